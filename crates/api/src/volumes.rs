//! Volume endpoints: `/volumes`, `/volumes/create`, `/volumes/{name}`, `/volumes/prune`.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use berth_engine::types::Volume;
use berth_engine::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::convert::rfc3339_nano;
use crate::error::{ApiError, ApiResult};
use crate::query::Query;
use crate::server::{empty, json_response, ok_json, parse_json};

pub(crate) fn routes() -> Router<Engine> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

fn to_wire(v: &Volume) -> Value {
    json!({
        "Name": v.name,
        "Driver": v.driver,
        "Mountpoint": v.mountpoint,
        "CreatedAt": rfc3339_nano(&v.created_at),
        "Labels": v.labels,
        "Scope": "local",
        "Options": v.options,
    })
}

async fn list(State(engine): State<Engine>, q: Query) -> ApiResult {
    let vols = engine.list_volumes(&q.filters()?)?;
    ok_json(&json!({
        "Volumes": vols.iter().map(to_wire).collect::<Vec<_>>(),
        "Warnings": Vec::<String>::new(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateBody {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Driver")]
    driver: String,
    #[serde(rename = "DriverOpts")]
    driver_opts: Option<HashMap<String, String>>,
    #[serde(rename = "Labels")]
    labels: Option<HashMap<String, String>>,
}

async fn create(State(engine): State<Engine>, body: Bytes) -> ApiResult {
    let b: CreateBody = if body.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        parse_json(&body)?
    };
    if !b.driver.is_empty() && b.driver != "local" {
        return Err(ApiError::not_found(format!(
            "error looking up volume plugin {}: plugin \"{}\" not found",
            b.driver, b.driver
        )));
    }
    let sorted = |m: Option<HashMap<String, String>>| -> BTreeMap<String, String> {
        m.unwrap_or_default().into_iter().collect()
    };
    let v = engine.create_volume(
        Some(b.name.as_str()).filter(|n| !n.is_empty()),
        sorted(b.labels),
        sorted(b.driver_opts),
    )?;
    Ok(json_response(StatusCode::CREATED, &to_wire(&v)))
}

async fn inspect(State(engine): State<Engine>, Path(name): Path<String>) -> ApiResult {
    ok_json(&to_wire(&engine.inspect_volume(&name)?))
}

async fn remove(State(engine): State<Engine>, Path(name): Path<String>, q: Query) -> ApiResult {
    engine.remove_volume(&name, q.bool("force"))?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn prune(State(engine): State<Engine>, q: Query) -> ApiResult {
    let r = engine.prune_volumes(&q.filters()?)?;
    ok_json(&json!({
        "VolumesDeleted": r.deleted,
        "SpaceReclaimed": r.space_reclaimed,
    }))
}
