//! Test fixtures: the shared registry and PKI from `berth-testkit`, a token server, and
//! helpers to push images.
#![allow(clippy::unwrap_used, dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use berth_distribution::{
    Credential, Digest, Registry, RegistryConfig, RegistryOptions, Repository,
};
use bytes::Bytes;

pub use berth_testkit::{closed_port, free_port, run, Pki, RegistryOpts, TestRegistry};

pub fn client(certs_dir: &Path) -> Registry {
    Registry::new(RegistryConfig {
        certs_dir: certs_dir.to_path_buf(),
        ..Default::default()
    })
    .unwrap()
}

/// Fast retries so failure paths do not slow the suite.
pub fn fast_opts() -> RegistryOptions {
    RegistryOptions {
        backoff: Duration::from_millis(10),
        ..Default::default()
    }
}

pub fn anon() -> Credential {
    Credential::default()
}

pub fn user(u: &str, p: &str) -> Credential {
    Credential {
        username: u.into(),
        password: p.into(),
        ..Default::default()
    }
}

/// Pseudo-random bytes from a seed: distinct content per test without a rand dependency.
pub fn blob(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn once(
    data: Vec<u8>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    // Several chunks, to exercise streaming rather than a single buffer.
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(7000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(chunks)
}

pub async fn push_blob(repo: &Repository, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    repo.push_blob(&d, data.len() as u64, once(data.to_vec()))
        .await
        .unwrap();
    d
}

/// Pushes a one-layer OCI image and tags it; returns (manifest digest, manifest bytes, layer).
pub async fn push_image(repo: &Repository, tag: &str, seed: u64) -> (Digest, Vec<u8>, Vec<u8>) {
    let layer = blob(seed, 50_000);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}},"config":{{}}}}"#,
        Digest::sha256_of(&layer)
    )
    .into_bytes();
    let ld = push_blob(repo, &layer).await;
    let cd = push_blob(repo, &config).await;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld.to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let d = repo
        .put_manifest(tag, "application/vnd.oci.image.manifest.v1+json", &manifest)
        .await
        .unwrap();
    assert_eq!(d, Digest::sha256_of(&manifest));
    (d, manifest, layer)
}

pub async fn collect(mut s: berth_distribution::BlobStream) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// A token server for the registry's `auth: token` mode: RS256 JWTs whose `x5c` header carries
/// a self-signed certificate that is also the registry's root bundle, signed by openssl.
/// Users: `alice:secret` gets every action asked for; anonymous gets pull on `public/*`.
pub struct TokenServer {
    pub url: String,
    pub hits: Arc<AtomicUsize>,
    pub bundle: PathBuf,
    _task: tokio::task::JoinHandle<()>,
}

pub const SERVICE: &str = "berth-test-registry";
pub const ISSUER: &str = "berth-test-issuer";
pub const REFRESH: &str = "refresh-token-alice";

struct TokenState {
    key: PathBuf,
    x5c: String,
    hits: Arc<AtomicUsize>,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl TokenServer {
    pub async fn start(dir: &Path) -> TokenServer {
        std::fs::create_dir_all(dir).unwrap();
        run(Command::new("openssl").current_dir(dir).args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "jwt.key",
            "-out",
            "jwt.crt",
            "-days",
            "2",
            "-subj",
            "/CN=berth token issuer",
        ]));
        run(Command::new("openssl").current_dir(dir).args([
            "x509", "-in", "jwt.crt", "-outform", "DER", "-out", "jwt.der",
        ]));
        let der = std::fs::read(dir.join("jwt.der")).unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(TokenState {
            key: dir.join("jwt.key"),
            x5c: base64::engine::general_purpose::STANDARD.encode(der),
            hits: hits.clone(),
        });
        let app = axum::Router::new()
            .route(
                "/token",
                axum::routing::get(token_handler).post(token_handler),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenServer {
            url: format!("http://127.0.0.1:{port}/token"),
            hits,
            bundle: dir.join("jwt.crt"),
            _task: task,
        }
    }

    pub fn registry_opts(&self) -> RegistryOpts {
        RegistryOpts {
            token: Some((
                self.url.clone(),
                SERVICE.into(),
                ISSUER.into(),
                self.bundle.clone(),
            )),
            ..Default::default()
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self._task.abort();
    }
}

async fn token_handler(
    axum::extract::State(st): axum::extract::State<Arc<TokenState>>,
    method: axum::http::Method,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    st.hits.fetch_add(1, Ordering::SeqCst);
    let params: Vec<(String, String)> = if method == axum::http::Method::POST {
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect()
    } else {
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect()
    };
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let denied = || {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            r#"{"details":"incorrect username or password"}"#,
        )
            .into_response()
    };
    let mut user = None;
    if method == axum::http::Method::POST {
        if get("grant_type").as_deref() != Some("refresh_token")
            || get("refresh_token").as_deref() != Some(REFRESH)
        {
            return denied();
        }
        user = Some("alice");
    } else if let Some(h) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        let Some(b) = h.strip_prefix("Basic ") else {
            return denied();
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_default();
        if raw != b"alice:secret" {
            return denied();
        }
        user = Some("alice");
    }
    if get("service").as_deref() != Some(SERVICE) {
        return (axum::http::StatusCode::BAD_REQUEST, "bad service").into_response();
    }
    // Scopes come as repeated `scope` params (GET) or one space-separated one (POST).
    let mut access = Vec::new();
    for s in params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(String::from).collect::<Vec<_>>())
    {
        let parts: Vec<&str> = s.splitn(3, ':').collect();
        if parts.len() != 3 || parts[0] != "repository" {
            continue;
        }
        let actions: Vec<&str> = parts[2].split(',').collect();
        let granted: Vec<&str> = match user {
            Some(_) => actions,
            None if parts[1].starts_with("public/") => {
                actions.into_iter().filter(|a| *a == "pull").collect()
            }
            None => Vec::new(),
        };
        access
            .push(serde_json::json!({"type": "repository", "name": parts[1], "actions": granted}));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [st.x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": user.unwrap_or(""), "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", st.hits.load(Ordering::SeqCst)),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        b64url(&serde_json::to_vec(&header).unwrap()),
        b64url(&serde_json::to_vec(&claims).unwrap())
    );
    let mut child = tokio::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&st.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    let jwt = format!("{input}.{}", b64url(&out.stdout));
    let mut resp = serde_json::json!({"token": jwt, "expires_in": 300});
    if user.is_some() && get("offline_token").as_deref() == Some("true") {
        resp["refresh_token"] = serde_json::json!(REFRESH);
    }
    axum::Json(resp).into_response()
}

/// Writes `<certs_dir>/<host>/ca.crt` (and the client identity when asked).
pub fn install_certs(certs_dir: &Path, host: &str, pki: &Pki, client_identity: bool) {
    let d = certs_dir.join(host);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(pki.path("ca.crt"), d.join("ca.crt")).unwrap();
    if client_identity {
        std::fs::copy(pki.path("client.crt"), d.join("client.cert")).unwrap();
        std::fs::copy(pki.path("client.key"), d.join("client.key")).unwrap();
    }
}

pub fn strict(certs_dir: &Path) -> Registry {
    Registry::with_options(
        RegistryConfig {
            certs_dir: certs_dir.to_path_buf(),
            ..Default::default()
        },
        RegistryOptions {
            insecure_loopback: false,
            ..fast_opts()
        },
    )
    .unwrap()
}
