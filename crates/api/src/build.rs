//! `POST /build`: the context tar from the body unpacked into a private directory (or a
//! `remote` URL fetched there, see `berth_build::fetch_remote`), then the builder's output as
//! Docker's JSON stream (`stream`, `aux`, `errorDetail`).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use berth_build::BuildOptions;
use berth_engine::types::HostConfig;
use berth_engine::Engine;

use crate::error::{ApiError, ApiResult};
use crate::progress::run_with_progress;
use crate::query::Query;
use crate::registry::registry_auth;

pub(crate) fn routes() -> Router<Engine> {
    Router::new().route("/build", post(build))
}

/// `buildargs` and `labels` are JSON objects in the query string.
fn json_map(q: &Query, key: &str) -> Result<BTreeMap<String, String>, ApiError> {
    match q.non_empty(key) {
        None => Ok(BTreeMap::new()),
        Some(raw) => {
            let m: BTreeMap<String, Option<String>> = serde_json::from_str(raw)
                .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}")))?;
            // A build arg sent as null means "declared without a value": not set.
            Ok(m.into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect())
        }
    }
}

/// The resource flags of `docker build`, as the host config of every RUN container.
fn run_host_config(q: &Query) -> Result<HostConfig, ApiError> {
    let int = |key: &str| -> Result<i64, ApiError> {
        q.non_empty(key).map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid {key}: {v:?}")))
        })
    };
    let ulimits = match q.non_empty("ulimits") {
        None => Vec::new(),
        Some(raw) => {
            let wire = serde_json::from_str(raw)
                .map_err(|e| ApiError::bad_request(format!("invalid ulimits: {e}")))?;
            crate::convert::container::ulimits_from_wire(wire)
        }
    };
    Ok(HostConfig {
        memory: int("memory")?,
        memory_swap: int("memswap")?,
        cpu_shares: int("cpushares")?,
        shm_size: int("shmsize")?,
        ulimits,
        ..Default::default()
    })
}

async fn build(
    State(engine): State<Engine>,
    q: Query,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let opts = BuildOptions {
        dockerfile: q
            .non_empty("dockerfile")
            .unwrap_or("Dockerfile")
            .to_string(),
        tags: q.all("t").into_iter().map(str::to_string).collect(),
        build_args: json_map(&q, "buildargs")?,
        target: q.non_empty("target").map(str::to_string),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        labels: json_map(&q, "labels")?,
        quiet: q.bool("q"),
        auth: registry_auth(&headers)?,
        run_host: run_host_config(&q)?,
    };
    let dir = engine.temp_dir("build-")?;
    let context = if let Some(remote) = q.non_empty("remote") {
        berth_build::fetch_remote(&engine, remote, dir.path(), &opts.dockerfile).await?
    } else {
        let reader = crate::upload::blocking_reader(body);
        let ctx = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            let unpacked = berth_build::unpack_context(&mut reader, &ctx);
            // Drain what follows the archive so the client's upload completes.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            unpacked
        })
        .await
        .map_err(|e| ApiError::internal(format!("context task: {e}")))??
    };
    run_with_progress(move |sink| async move {
        let r = berth_build::build(&engine, &context, opts, sink).await;
        // The client need not wait for the context's files to be removed.
        tokio::task::spawn_blocking(move || drop(dir));
        r.map(|_| ())
    })
    .await
}
