//! Behaviours a well-behaved registry never shows (5xx/429 storms, schema 1, lying digests,
//! ignored Range, redirects to blob storage) and Docker Hub's search API, against a small
//! stand-in HTTP server.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_distribution::{Credential, Digest, ErrorKind, Reference, Registry, RegistryConfig};
use common::*;

#[derive(Default)]
struct Seen {
    hits: HashMap<String, usize>,
    auth: HashMap<String, Option<String>>,
    queries: Vec<String>,
}

struct Standin {
    port: u16,
    seen: Arc<Mutex<Seen>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for Standin {
    fn drop(&mut self) {
        self._task.abort();
    }
}

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

fn layer() -> Vec<u8> {
    blob(99, 30_000)
}

async fn handler(
    axum::extract::State(st): axum::extract::State<(Arc<Mutex<Seen>>, u16)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (seen, port) = st;
    let path = uri.path().to_string();
    let n = {
        let mut s = seen.lock().unwrap();
        let n = s.hits.entry(path.clone()).or_insert(0);
        *n += 1;
        let n = *n;
        s.auth.insert(
            path.clone(),
            headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string()),
        );
        if let Some(q) = uri.query() {
            s.queries.push(q.to_string());
        }
        n
    };
    let oci = [("content-type", "application/vnd.oci.image.manifest.v1+json")];
    let layer = layer();
    let ld = Digest::sha256_of(&layer).to_string();
    match path.as_str() {
        "/v2/flaky/manifests/v1" if n <= 2 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "/v2/flaky/manifests/v1" => (oci, MANIFEST).into_response(),
        "/v2/busy/manifests/v1" if n == 1 => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "slow down").into_response()
        }
        "/v2/busy/manifests/v1" => (oci, MANIFEST).into_response(),
        "/v2/down/manifests/v1" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "/v2/bad/manifests/v1" => (
            StatusCode::BAD_REQUEST,
            r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{}}]}"#,
        )
            .into_response(),
        "/v2/old/manifests/v1" => (
            [("content-type", "application/vnd.docker.distribution.manifest.v1+prettyjws")],
            r#"{"schemaVersion":1,"name":"old","tag":"v1","fsLayers":[],"history":[],"signatures":[]}"#,
        )
            .into_response(),
        "/v2/lying/manifests/v1" => (
            [
                ("content-type", "application/vnd.oci.image.manifest.v1+json"),
                ("docker-content-digest", "sha256:0000000000000000000000000000000000000000000000000000000000000000"),
            ],
            MANIFEST,
        )
            .into_response(),
        p if p.starts_with("/v2/lying/manifests/sha256:") => (oci, MANIFEST).into_response(),
        "/v2/generic/manifests/v1" => ([("content-type", "application/json")], MANIFEST).into_response(),
        p if p == format!("/v2/norange/blobs/{ld}") => layer.into_response(),
        p if p == format!("/v2/redir/blobs/{ld}") => (
            StatusCode::TEMPORARY_REDIRECT,
            // Another host name for the same server: a cross-host redirect.
            [("location", format!("http://localhost:{port}/storage/{ld}?sig=x"))],
        )
            .into_response(),
        p if p.starts_with("/storage/") => {
            let range = headers.get("range").map(|v| v.to_str().unwrap().to_string());
            match range.as_deref().and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.strip_suffix('-')) {
                Some(off) => {
                    let off: usize = off.parse().unwrap();
                    (StatusCode::PARTIAL_CONTENT, layer[off..].to_vec()).into_response()
                }
                None => layer.into_response(),
            }
        }
        "/v1/search" => axum::Json(serde_json::json!({
            "num_results": 2, "query": "busy",
            "results": [
                {"name": "busybox", "description": "Busybox base image.", "star_count": 3000, "is_official": true, "is_automated": false},
                {"name": "someone/busy", "description": "", "star_count": 1, "is_official": false, "is_automated": true},
            ],
        }))
        .into_response(),
        _ if method == Method::HEAD => StatusCode::NOT_FOUND.into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
        )
            .into_response(),
    }
}

async fn standin() -> Standin {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = axum::Router::new()
        .fallback(handler)
        .with_state((seen.clone(), port));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Standin {
        port,
        seen,
        _task: task,
    }
}

impl Standin {
    fn repo(
        &self,
        client: &Registry,
        name: &str,
        cred: &Credential,
    ) -> berth_distribution::Repository {
        let r = Reference::parse_normalized(&format!("127.0.0.1:{}/{name}", self.port)).unwrap();
        client.repository(&r, cred, false)
    }
    fn hits(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

fn fast_client() -> Registry {
    Registry::with_options(
        RegistryConfig {
            certs_dir: "/nonexistent".into(),
            ..Default::default()
        },
        fast_opts(),
    )
    .unwrap()
}

#[tokio::test]
async fn transient_errors_are_retried_then_reported() {
    let s = standin().await;
    let c = fast_client();
    let m = s
        .repo(&c, "flaky", &anon())
        .get_manifest("v1")
        .await
        .unwrap();
    assert_eq!(m.bytes, MANIFEST);
    assert_eq!(s.hits("/v2/flaky/manifests/v1"), 3);

    s.repo(&c, "busy", &anon())
        .get_manifest("v1")
        .await
        .unwrap();
    assert_eq!(s.hits("/v2/busy/manifests/v1"), 2);

    let e = s
        .repo(&c, "down", &anon())
        .get_manifest("v1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport);
    assert!(e.to_string().contains("500 Internal Server Error"), "{e}");
    assert_eq!(s.hits("/v2/down/manifests/v1"), 3);

    // 4xx other than 429 is final at once.
    let e = s
        .repo(&c, "bad", &anon())
        .get_manifest("v1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(s.hits("/v2/bad/manifests/v1"), 1);
    assert!(
        e.to_string()
            .ends_with("manifest invalid: manifest invalid"),
        "{e}"
    );

    let e = s
        .repo(&c, "nothere", &anon())
        .get_manifest("v1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!("repository 127.0.0.1:{}/nothere not found: name unknown: repository name not known to registry", s.port)
    );
}

#[tokio::test]
async fn schema1_and_digest_checks() {
    let s = standin().await;
    let c = fast_client();
    let e = s
        .repo(&c, "old", &anon())
        .get_manifest("v1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        e.to_string().contains("schema 1 support has been removed"),
        "{e}"
    );

    let e = s
        .repo(&c, "lying", &anon())
        .get_manifest("v1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch, "{e}");
    let wrong = Digest::sha256_of(b"something else");
    let e = s
        .repo(&c, "lying", &anon())
        .get_manifest(&wrong.to_string())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch, "{e}");
    let right = Digest::sha256_of(MANIFEST);
    let m = s
        .repo(&c, "lying", &anon())
        .get_manifest(&right.to_string())
        .await
        .unwrap();
    assert_eq!(m.digest, right);

    // A generic Content-Type is resolved from the body.
    let m = s
        .repo(&c, "generic", &anon())
        .get_manifest("v1")
        .await
        .unwrap();
    assert_eq!(m.media_type, berth_distribution::OCI_MANIFEST);
}

#[tokio::test]
async fn ignored_range_and_cross_host_redirect() {
    let s = standin().await;
    let c = fast_client();
    let layer = layer();
    let ld = Digest::sha256_of(&layer);
    let b = s
        .repo(&c, "norange", &anon())
        .blob_stream(&ld, 1000)
        .await
        .unwrap();
    assert_eq!(b.size, Some(layer.len() as u64 - 1000));
    assert_eq!(collect(b).await, layer[1000..]);

    let cred = Credential {
        registry_token: "tok".into(),
        ..Default::default()
    };
    let b = s
        .repo(&c, "redir", &cred)
        .blob_stream(&ld, 5)
        .await
        .unwrap();
    assert_eq!(collect(b).await, layer[5..]);
    let seen = s.seen.lock().unwrap();
    assert_eq!(
        seen.auth[&format!("/v2/redir/blobs/{ld}")].as_deref(),
        Some("Bearer tok")
    );
    assert_eq!(
        seen.auth[&format!("/storage/{ld}")],
        None,
        "Authorization leaked to storage"
    );
}

#[tokio::test]
async fn search_docker_hub_format() {
    let s = standin().await;
    let c = fast_client();
    let results = c
        .search(
            &format!("http://127.0.0.1:{}/v1/", s.port),
            "busy box",
            25,
            &anon(),
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].name, "busybox");
    assert!(results[0].is_official);
    assert_eq!(results[0].star_count, 3000);
    assert!(results[1].is_automated);
    assert!(s
        .seen
        .lock()
        .unwrap()
        .queries
        .contains(&"q=busy+box&n=25".to_string()));
    let e = c
        .search(&format!("http://127.0.0.1:{}", s.port), "x", 0, &anon())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.to_string(), "limit 0 is outside the range of [1, 100]");
}
