//! Test fixtures: a real `docker-registry` (distribution 2.8) per test on a free loopback
//! port, certificates made with openssl, a token server, and helpers to push images.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use berth_distribution::{
    Credential, Digest, Reference, Registry, RegistryConfig, RegistryOptions, Repository,
};
use bytes::Bytes;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port nothing listens on (bound then released; good enough for a refused connection).
pub fn closed_port() -> u16 {
    free_port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and certificates signed by it, made with openssl in `dir`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let d = dir.to_path_buf();
        std::fs::create_dir_all(&d).unwrap();
        run(Command::new("openssl").current_dir(&d).args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]));
        let pki = Pki { dir: d };
        pki.issue(
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        pki.issue("client", "extendedKeyUsage=clientAuth\n");
        pki
    }

    fn issue(&self, name: &str, ext: &str) {
        let ext_file = self.dir.join(format!("{name}.ext"));
        std::fs::write(&ext_file, format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n{ext}")).unwrap();
        run(Command::new("openssl").current_dir(&self.dir).args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ]));
        run(Command::new("openssl").current_dir(&self.dir).args([
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]));
    }

    pub fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }
}

#[derive(Default)]
pub struct RegistryOpts {
    /// Serve TLS with the PKI's server certificate.
    pub tls: Option<PathBuf>,
    /// Require client certificates signed by the CA.
    pub client_ca: bool,
    /// `user:password` pairs for htpasswd (bcrypt) Basic auth.
    pub htpasswd: Vec<(String, String)>,
    /// Token auth: (realm URL, service, issuer, root cert bundle).
    pub token: Option<(String, String, String, PathBuf)>,
}

/// A running `docker-registry`, killed on drop.
pub struct TestRegistry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl TestRegistry {
    pub fn plain() -> TestRegistry {
        TestRegistry::start(RegistryOpts::default())
    }

    pub fn start(opts: RegistryOpts) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let mut auth = String::new();
        if !opts.htpasswd.is_empty() {
            let mut lines = String::new();
            for (u, p) in &opts.htpasswd {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", u, p])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                lines.push_str(String::from_utf8_lossy(&out.stdout).trim());
                lines.push('\n');
            }
            let f = dir.path().join("htpasswd");
            std::fs::write(&f, lines).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                f.display()
            );
        }
        if let Some((realm, service, issuer, bundle)) = &opts.token {
            auth = format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                bundle.display()
            );
        }
        let mut tls = String::new();
        if let Some(pki) = &opts.tls {
            tls = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                pki.join("server.crt").display(),
                pki.join("server.key").display()
            );
            if opts.client_ca {
                tls.push_str(&format!(
                    "    clientcas:\n      - {}\n",
                    pki.join("ca.crt").display()
                ));
            }
        }
        // A port can be taken between probing and binding by a parallel test: retry.
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n{tls}{auth}",
                dir.path().join("data").display()
            );
            let cfg = dir.path().join("config.yml");
            std::fs::write(&cfg, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut up = false;
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if up {
                return TestRegistry { port, dir, child };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start: {}",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn reference(&self, name: &str) -> Reference {
        Reference::parse_normalized(&format!("{}/{name}", self.host())).unwrap()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
