//! `Registry`: configuration, endpoints, authentication (Basic, Bearer token flow with a token
//! cache), and the one place requests are sent, with retries.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tracing::debug;
use url::Url;

use crate::challenge::parse_challenges;
use crate::error::{Error, ErrorKind};
use crate::hosts::{Clients, InsecureList};

/// Docker Hub's registry host: `docker.io` names are pulled from here.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
/// Sent as `client_id` to token servers; Docker Hub's recognises Docker's.
const CLIENT_ID: &str = "docker";

/// Daemon-level registry settings (daemon.json `registry-mirrors`, `insecure-registries`, and
/// the certificates directory).
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Pull-through mirrors for Docker Hub, e.g. `http://127.0.0.1:5000`, tried in order.
    pub mirrors: Vec<String>,
    /// `host:port`, `host`, or CIDR. 127.0.0.0/8 is added unless
    /// [`RegistryOptions::insecure_loopback`] is false.
    pub insecure: Vec<String>,
    /// Docker's `certs.d` layout: `<host[:port]>/*.crt` CAs, `<name>.cert` + `<name>.key`.
    pub certs_dir: PathBuf,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            mirrors: Vec::new(),
            insecure: Vec::new(),
            certs_dir: PathBuf::from("/etc/berth/certs.d"),
        }
    }
}

/// Tuning that daemon.json does not expose; the defaults are Docker-like.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Treat 127.0.0.0/8 and ::1 as insecure (Docker always does).
    pub insecure_loopback: bool,
    /// Tries per request for transient failures (connect errors, timeouts, 5xx, 429).
    pub attempts: u32,
    /// First retry delay; doubles each retry.
    pub backoff: Duration,
    /// Blobs larger than this are uploaded in chunks of `chunk_size` rather than one PUT.
    pub monolithic_max: u64,
    pub chunk_size: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_loopback: true,
            attempts: 3,
            backoff: Duration::from_millis(200),
            monolithic_max: 1 << 30,
            chunk_size: 16 << 20,
        }
    }
}

/// Credentials as the docker CLI sends them in `X-Registry-Auth`; all empty = anonymous.
#[derive(Clone, Debug, Default)]
pub struct Credential {
    pub username: String,
    pub password: String,
    /// A refresh token from an earlier login (`IdentityToken`): exchanged via OAuth2 POST.
    pub identity_token: String,
    /// A bearer token to send as is (`RegistryToken`).
    pub registry_token: String,
}

impl Credential {
    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identity_token.is_empty()
            && self.registry_token.is_empty()
    }

    /// Cache key part: tokens obtained with one credential must never serve another.
    fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for f in [
            &self.username,
            &self.password,
            &self.identity_token,
            &self.registry_token,
        ] {
            h.update((f.len() as u64).to_le_bytes());
            h.update(f.as_bytes());
        }
        let out = h.finalize();
        out.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn basic_header(&self) -> Option<HeaderValue> {
        if self.username.is_empty() {
            return None;
        }
        let raw = format!("{}:{}", self.username, self.password);
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        HeaderValue::from_str(&v).ok().map(|mut h| {
            h.set_sensitive(true);
            h
        })
    }
}

/// One base URL a repository can be reached at.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `scheme://host[:port][/prefix]`, no trailing slash.
    pub base: String,
    /// TLS without certificate verification (insecure registry over https).
    pub skip_verify: bool,
    pub mirror: bool,
}

/// How a registry wants to be authenticated, learned from its 401s.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    Basic,
    Bearer { realm: String, service: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    realm: String,
    service: String,
    scopes: String,
    cred: String,
}

struct CachedToken {
    token: String,
    expires: Instant,
}

#[derive(Default)]
struct AuthState {
    schemes: HashMap<String, Scheme>,
    tokens: HashMap<TokenKey, CachedToken>,
}

pub(crate) struct Inner {
    mirrors: Vec<Url>,
    insecure: InsecureList,
    clients: Clients,
    pub(crate) opts: RegistryOptions,
    auth: Mutex<AuthState>,
    /// Insecure hosts whose https endpoint could not be reached: plain http is tried first
    /// for them from then on, instead of a failed TLS handshake per request.
    plain_http: Mutex<std::collections::HashSet<String>>,
}

/// The registry client. Cheap to clone; clones share HTTP clients, learned auth schemes and
/// cached bearer tokens.
#[derive(Clone)]
pub struct Registry {
    pub(crate) inner: Arc<Inner>,
}

/// A request body: replayable bodies can be retried and re-sent after a 401; a stream is sent
/// once.
pub(crate) enum ReqBody {
    Empty,
    Bytes(Bytes),
    Once(Option<reqwest::Body>),
}

pub(crate) struct Req<'a> {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: ReqBody,
    /// Retry on 5xx/429 (idempotent, or harmless to repeat). Connect failures are always
    /// retried for replayable bodies: nothing reached the server.
    pub retry: bool,
    /// Add credentials per the endpoint's learned scheme, and learn it from a 401. Off for
    /// token-server requests and login pings, which carry their own `Authorization` or none.
    pub auth: bool,
    pub ep: &'a Endpoint,
    pub scopes: &'a [String],
    pub cred: &'a Credential,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: u64,
    #[serde(default)]
    refresh_token: String,
}

/// Go's `http.Request` method spelling, as Docker's errors show it (`Get "https://…"`).
fn method_word(m: &Method) -> String {
    let s = m.as_str();
    let mut out = s[..1].to_string();
    out.push_str(&s[1..].to_ascii_lowercase());
    out
}

/// The cause chain of a reqwest error: its own Display is only "error sending request for url".
pub(crate) fn transport_error(method: &Method, url: &Url, e: &reqwest::Error) -> Error {
    let mut parts: Vec<String> = Vec::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    let mut u = url.clone();
    u.set_query(None);
    Error::transport(format!(
        "{} \"{}\": {}",
        method_word(method),
        u,
        parts.join(": ")
    ))
}

/// Whether a failed send may succeed if repeated. TLS failures (which rustls reports as
/// `InvalidData` I/O errors) are deterministic and must fail fast so https→http fallback is
/// quick.
fn retriable(e: &reqwest::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut io_kind = None;
    let mut text = String::new();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        text.push_str(&s.to_string());
        src = s.source();
    }
    use std::io::ErrorKind as K;
    match io_kind {
        Some(K::InvalidData | K::InvalidInput | K::PermissionDenied) => false,
        Some(
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::TimedOut
            | K::NotConnected,
        ) => true,
        _ => {
            e.is_timeout()
                || e.is_connect()
                || text.contains("connection closed before message completed")
        }
    }
}

fn authority(u: &Url) -> String {
    let host = u.host_str().unwrap_or("");
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

impl Registry {
    pub fn new(cfg: RegistryConfig) -> Result<Registry, Error> {
        Registry::with_options(cfg, RegistryOptions::default())
    }

    pub fn with_options(cfg: RegistryConfig, opts: RegistryOptions) -> Result<Registry, Error> {
        let mut mirrors = Vec::new();
        for m in &cfg.mirrors {
            let u = Url::parse(m.trim())
                .map_err(|e| Error::invalid(format!("invalid mirror {m}: {e}")))?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(Error::invalid(format!(
                    "invalid mirror {m}: unsupported scheme or missing host"
                )));
            }
            mirrors.push(u);
        }
        Ok(Registry {
            inner: Arc::new(Inner {
                mirrors,
                insecure: InsecureList::new(&cfg.insecure, opts.insecure_loopback)?,
                clients: Clients::new(cfg.certs_dir),
                opts,
                auth: Mutex::new(AuthState::default()),
                plain_http: Mutex::default(),
            }),
        })
    }

    pub fn is_insecure(&self, host_port: &str) -> bool {
        self.inner.insecure.is_insecure(host_port)
    }

    /// The endpoints of a registry host: https, then http when insecure (Docker's order), or
    /// http first once https proved unreachable there.
    pub(crate) fn host_endpoints(&self, host: &str) -> Vec<Endpoint> {
        let insecure = self.is_insecure(host);
        let mut v = vec![Endpoint {
            base: format!("https://{host}"),
            skip_verify: insecure,
            mirror: false,
        }];
        if insecure {
            let http = Endpoint {
                base: format!("http://{host}"),
                skip_verify: false,
                mirror: false,
            };
            if self.plain_http_hosts().contains(&host.to_ascii_lowercase()) {
                v.insert(0, http);
            } else {
                v.push(http);
            }
        }
        v
    }

    fn plain_http_hosts(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        // Only a set of names inside; a panic elsewhere cannot leave it half-updated.
        self.inner
            .plain_http
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn mirror_endpoints(&self) -> Vec<Endpoint> {
        self.inner
            .mirrors
            .iter()
            .map(|u| {
                let host = authority(u);
                Endpoint {
                    base: u.as_str().trim_end_matches('/').to_string(),
                    skip_verify: u.scheme() == "https" && self.is_insecure(&host),
                    mirror: true,
                }
            })
            .collect()
    }

    fn client_for(&self, url: &Url, skip_verify: bool) -> Result<reqwest::Client, Error> {
        self.inner.clients.get(&authority(url), skip_verify)
    }

    fn auth_state(&self) -> std::sync::MutexGuard<'_, AuthState> {
        // Only maps are inside; a panic elsewhere cannot leave them half-updated.
        self.inner.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn backoff(&self, attempt: u32, retry_after: Option<Duration>) {
        let d = self.inner.opts.backoff * 2u32.saturating_pow(attempt.saturating_sub(1));
        let d = retry_after
            .filter(|r| *r <= Duration::from_secs(10))
            .unwrap_or(d);
        tokio::time::sleep(d).await;
    }

    /// Sends a request: adds authentication (learning the scheme from a 401 and retrying once
    /// with credentials when the body can be replayed), retries transient failures, and returns
    /// any response, success or not, for the caller to interpret.
    pub(crate) async fn send(&self, mut req: Req<'_>) -> Result<Response, Error> {
        let skip_verify = req.ep.skip_verify && req.url.scheme() == "https";
        let client = self.client_for(&req.url, skip_verify)?;
        let attempts = self.inner.opts.attempts.max(1);
        let mut attempt = 0;
        let mut auth_retried = false;
        loop {
            attempt += 1;
            let auth = if req.auth {
                self.authorization(req.ep, req.scopes, req.cred).await?
            } else {
                None
            };
            let mut rb = client
                .request(req.method.clone(), req.url.clone())
                .headers(req.headers.clone());
            if let Some(a) = &auth {
                rb = rb.header(AUTHORIZATION, a.clone());
            }
            let replayable = !matches!(req.body, ReqBody::Once(_));
            rb = match &mut req.body {
                ReqBody::Empty => rb,
                ReqBody::Bytes(b) => rb.body(b.clone()),
                ReqBody::Once(b) => match b.take() {
                    Some(b) => rb.body(b),
                    None => {
                        return Err(Error::transport(format!(
                            "{} \"{}\": request body already consumed",
                            method_word(&req.method),
                            req.url
                        )))
                    }
                },
            };
            debug!(method = %req.method, url = %req.url, attempt, "registry request");
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    // https to an insecure registry has plain http behind it: a failed
                    // connection there is an answer (it speaks http), not a glitch to retry.
                    let has_fallback = req.ep.skip_verify && req.url.scheme() == "https";
                    if has_fallback && e.is_connect() {
                        self.plain_http_hosts()
                            .insert(authority(&req.url).to_ascii_lowercase());
                        return Err(transport_error(&req.method, &req.url, &e));
                    }
                    if replayable && attempt < attempts && retriable(&e) {
                        debug!(url = %req.url, "transient error, retrying: {e}");
                        self.backoff(attempt, None).await;
                        continue;
                    }
                    return Err(transport_error(&req.method, &req.url, &e));
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && req.auth && !auth_retried {
                auth_retried = true;
                let learned = self.learn_challenge(req.ep, &resp);
                if !replayable || !learned {
                    return Ok(resp);
                }
                if let Some(old) = &auth {
                    // A rejected cached token may have been revoked or expired early.
                    self.forget_token(req.ep, req.scopes, req.cred);
                    let new = self.authorization(req.ep, req.scopes, req.cred).await?;
                    if new.as_ref() == Some(old) {
                        return Ok(resp);
                    }
                } else if self
                    .authorization(req.ep, req.scopes, req.cred)
                    .await?
                    .is_none()
                {
                    return Ok(resp);
                }
                attempt -= 1;
                continue;
            }
            if (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
                && req.retry
                && replayable
                && attempt < attempts
            {
                let retry_after = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                debug!(url = %req.url, %status, "server error, retrying");
                drop(resp);
                self.backoff(attempt, retry_after).await;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Records the scheme a 401 asks for; false when there is none berth can answer.
    fn learn_challenge(&self, ep: &Endpoint, resp: &Response) -> bool {
        let mut chosen = None;
        for v in resp.headers().get_all(WWW_AUTHENTICATE) {
            let Ok(v) = v.to_str() else { continue };
            for c in parse_challenges(v) {
                match c.scheme.as_str() {
                    "bearer" => {
                        if let Some(realm) = c.param("realm").filter(|r| !r.is_empty()) {
                            chosen = Some(Scheme::Bearer {
                                realm: realm.to_string(),
                                service: c.param("service").unwrap_or("").to_string(),
                            });
                        }
                    }
                    "basic" if chosen.is_none() => chosen = Some(Scheme::Basic),
                    _ => {}
                }
            }
        }
        match chosen {
            Some(s) => {
                debug!(endpoint = %ep.base, scheme = ?s, "auth challenge");
                self.auth_state().schemes.insert(ep.base.clone(), s);
                true
            }
            None => false,
        }
    }

    fn token_key(&self, ep: &Endpoint, scopes: &[String], cred: &Credential) -> Option<TokenKey> {
        match self.auth_state().schemes.get(&ep.base) {
            Some(Scheme::Bearer { realm, service }) => Some(TokenKey {
                realm: realm.clone(),
                service: service.clone(),
                scopes: scopes.join(" "),
                cred: cred.fingerprint(),
            }),
            _ => None,
        }
    }

    fn forget_token(&self, ep: &Endpoint, scopes: &[String], cred: &Credential) {
        if let Some(k) = self.token_key(ep, scopes, cred) {
            self.auth_state().tokens.remove(&k);
        }
    }

    /// The `Authorization` value for a request to `ep`, if its scheme is known.
    async fn authorization(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        cred: &Credential,
    ) -> Result<Option<HeaderValue>, Error> {
        if !cred.registry_token.is_empty() {
            return Ok(bearer(&cred.registry_token));
        }
        let scheme = self.auth_state().schemes.get(&ep.base).cloned();
        match scheme {
            None => Ok(None),
            Some(Scheme::Basic) => Ok(cred.basic_header()),
            Some(Scheme::Bearer { realm, service }) => {
                let key = TokenKey {
                    realm: realm.clone(),
                    service: service.clone(),
                    scopes: scopes.join(" "),
                    cred: cred.fingerprint(),
                };
                if let Some(t) = self.auth_state().tokens.get(&key) {
                    if t.expires > Instant::now() {
                        return Ok(bearer(&t.token));
                    }
                }
                // Boxed: fetching a token sends a request, which may need authorization.
                let t = Box::pin(self.fetch_token(&realm, &service, scopes, cred, false)).await?;
                // Tokens are valid at least 60 s per the spec; leave a margin for clock and
                // transfer time so a token does not expire mid-request.
                let ttl = Duration::from_secs(t.expires_in.max(60))
                    .saturating_sub(Duration::from_secs(10));
                let token = if t.token.is_empty() {
                    t.access_token
                } else {
                    t.token
                };
                self.auth_state().tokens.insert(
                    key,
                    CachedToken {
                        token: token.clone(),
                        expires: Instant::now() + ttl,
                    },
                );
                Ok(bearer(&token))
            }
        }
    }

    /// The token flow of the distribution spec: OAuth2 POST with the refresh token when there
    /// is an identity token, else GET with Basic credentials (or none, for anonymous).
    async fn fetch_token(
        &self,
        realm: &str,
        service: &str,
        scopes: &[String],
        cred: &Credential,
        offline: bool,
    ) -> Result<TokenResponse, Error> {
        let realm_url = Url::parse(realm)
            .map_err(|e| Error::transport(format!("invalid token realm {realm}: {e}")))?;
        let host = authority(&realm_url);
        let skip_verify = realm_url.scheme() == "https" && self.is_insecure(&host);
        let ep = Endpoint {
            base: format!("{}://{host}", realm_url.scheme()),
            skip_verify,
            mirror: false,
        };
        let no_cred = Credential::default();
        if !cred.identity_token.is_empty() {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", cred.identity_token.clone()),
                ("client_id", CLIENT_ID.to_string()),
            ];
            if !service.is_empty() {
                form.push(("service", service.to_string()));
            }
            if !scopes.is_empty() {
                form.push(("scope", scopes.join(" ")));
            }
            if offline {
                form.push(("access_type", "offline".to_string()));
            }
            let body = form_encode(&form);
            let mut headers = HeaderMap::new();
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
            );
            let resp = self
                .send_plain(
                    Method::POST,
                    realm_url.clone(),
                    headers,
                    Some(Bytes::from(body)),
                    &ep,
                    &no_cred,
                )
                .await?;
            let status = resp.status();
            // Token servers without OAuth2 answer 404/405: fall back to GET when a password
            // is there to fall back with.
            let fall_back = matches!(status.as_u16(), 404 | 405) && !cred.username.is_empty();
            if !fall_back {
                return parse_token_response(resp).await;
            }
        }
        let mut url = realm_url;
        {
            let mut q = url.query_pairs_mut();
            if !service.is_empty() {
                q.append_pair("service", service);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
            if offline {
                q.append_pair("offline_token", "true");
                q.append_pair("client_id", CLIENT_ID);
            }
        }
        let mut headers = HeaderMap::new();
        if let Some(b) = cred.basic_header() {
            headers.insert(AUTHORIZATION, b);
        }
        let resp = self
            .send_plain(Method::GET, url, headers, None, &ep, &no_cred)
            .await?;
        parse_token_response(resp).await
    }

    /// A request without the auth machinery (token server, ping), with retries.
    async fn send_plain(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
        ep: &Endpoint,
        cred: &Credential,
    ) -> Result<Response, Error> {
        self.send(Req {
            retry: method != Method::POST,
            auth: false,
            method,
            url,
            headers,
            body: body.map(ReqBody::Bytes).unwrap_or(ReqBody::Empty),
            ep,
            scopes: &[],
            cred,
        })
        .await
    }

    /// Docker's `POST /auth`: checks `cred` against `server` and returns the identity (refresh)
    /// token the token server issued, if any. `server` may be a URL
    /// (`https://index.docker.io/v1/`) or a host (`myreg:5000`).
    pub async fn login(&self, server: &str, cred: &Credential) -> Result<Option<String>, Error> {
        let host = login_host(server)?;
        let explicit_http = server.trim().starts_with("http://");
        let mut endpoints = self.host_endpoints(&host);
        if explicit_http && !endpoints.iter().any(|e| e.base.starts_with("http://")) {
            return Err(Error::invalid(format!(
                "{host} is not an insecure registry: refusing to log in over plain HTTP"
            )));
        }
        if explicit_http {
            endpoints.retain(|e| e.base.starts_with("http://"));
        }
        let mut last = None;
        for ep in &endpoints {
            match self.login_endpoint(ep, cred).await {
                Err(e) if e.kind() == ErrorKind::Transport => {
                    debug!(endpoint = %ep.base, "login endpoint failed: {e}");
                    last = Some(e);
                }
                r => return r,
            }
        }
        Err(last.unwrap_or_else(|| Error::transport(format!("no endpoint for {host}"))))
    }

    async fn login_endpoint(
        &self,
        ep: &Endpoint,
        cred: &Credential,
    ) -> Result<Option<String>, Error> {
        let url = Url::parse(&format!("{}/v2/", ep.base))
            .map_err(|e| Error::invalid(format!("invalid registry address: {e}")))?;
        let no_cred = Credential::default();
        let resp = self
            .send_plain(
                Method::GET,
                url.clone(),
                HeaderMap::new(),
                None,
                ep,
                &no_cred,
            )
            .await?;
        if resp.status().is_success() {
            // No authentication at all: Docker reports success.
            return Ok(None);
        }
        if resp.status() != StatusCode::UNAUTHORIZED || !self.learn_challenge(ep, &resp) {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            return Err(Error::from_response(status, &body).context(format!("Get \"{url}\"")));
        }
        let failed = |status: StatusCode| {
            Error::unauthorized(format!(
                "login attempt to {url} failed with status: {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ))
        };
        let scheme = self.auth_state().schemes.get(&ep.base).cloned();
        let (header, refresh) = match scheme {
            Some(Scheme::Bearer { realm, service }) => {
                if !cred.registry_token.is_empty() {
                    (bearer(&cred.registry_token), None)
                } else {
                    let t = self.fetch_token(&realm, &service, &[], cred, true).await?;
                    let token = if t.token.is_empty() {
                        t.access_token
                    } else {
                        t.token
                    };
                    let refresh = (!t.refresh_token.is_empty()).then_some(t.refresh_token);
                    (bearer(&token), refresh)
                }
            }
            _ => match cred.basic_header() {
                Some(h) => (Some(h), None),
                None => return Err(failed(StatusCode::UNAUTHORIZED)),
            },
        };
        let mut headers = HeaderMap::new();
        if let Some(h) = header {
            headers.insert(AUTHORIZATION, h);
        }
        let resp = self
            .send_plain(Method::GET, url.clone(), headers, None, ep, &no_cred)
            .await?;
        if resp.status().is_success() {
            Ok(refresh)
        } else {
            Err(failed(resp.status()))
        }
    }

    pub(crate) fn options(&self) -> &RegistryOptions {
        &self.inner.opts
    }
}

fn bearer(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .ok()
        .map(|mut h| {
            h.set_sensitive(true);
            h
        })
}

fn form_encode(pairs: &[(&str, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn parse_token_response(resp: Response) -> Result<TokenResponse, Error> {
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Error::transport(format!("reading token response: {e}")))?;
    if !status.is_success() {
        let mut e = Error::from_response(status.as_u16(), &body);
        if matches!(status.as_u16(), 401 | 403) {
            if e.kind() != ErrorKind::Unauthorized {
                e = Error::unauthorized(e.message().to_string());
            }
            e = e.mark_credentials_rejected();
        }
        return Err(e);
    }
    let t: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| Error::transport(format!("unable to decode token response: {e}")))?;
    if t.token.is_empty() && t.access_token.is_empty() {
        return Err(Error::transport(
            "authorization server did not include a token in the response",
        ));
    }
    Ok(t)
}

/// The registry host for a login `server` argument, with Docker Hub's aliases mapped.
fn login_host(server: &str) -> Result<String, Error> {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    if host.is_empty()
        || matches!(
            host.as_str(),
            "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
        )
    {
        return Ok(DOCKER_HUB_REGISTRY.to_string());
    }
    if host.contains(char::is_whitespace) {
        return Err(Error::invalid(format!("invalid registry address {server}")));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn login_hosts() {
        assert_eq!(
            login_host("https://index.docker.io/v1/").unwrap(),
            DOCKER_HUB_REGISTRY
        );
        assert_eq!(login_host("").unwrap(), DOCKER_HUB_REGISTRY);
        assert_eq!(login_host("docker.io").unwrap(), DOCKER_HUB_REGISTRY);
        assert_eq!(login_host("myreg:5000").unwrap(), "myreg:5000");
        assert_eq!(
            login_host("http://127.0.0.1:5000/v2/").unwrap(),
            "127.0.0.1:5000"
        );
    }

    #[test]
    fn credential_fingerprints_differ() {
        let a = Credential {
            username: "a".into(),
            password: "bc".into(),
            ..Default::default()
        };
        let b = Credential {
            username: "ab".into(),
            password: "c".into(),
            ..Default::default()
        };
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(Credential::default().is_anonymous());
        assert_eq!(
            a.basic_header().unwrap().to_str().unwrap(),
            "Basic YTpiYw=="
        );
        assert!(Credential::default().basic_header().is_none());
    }

    #[test]
    fn endpoints() {
        let r = Registry::new(RegistryConfig {
            mirrors: vec![
                "http://127.0.0.1:1/".into(),
                "https://mirror.example/prefix/".into(),
            ],
            insecure: vec!["10.0.0.0/8".into()],
            certs_dir: "/nonexistent".into(),
        })
        .unwrap();
        let m = r.mirror_endpoints();
        assert_eq!(m[0].base, "http://127.0.0.1:1");
        assert_eq!(m[1].base, "https://mirror.example/prefix");
        assert!(!m[1].skip_verify);
        let e = r.host_endpoints("10.1.1.1:5000");
        assert_eq!(e.len(), 2);
        assert!(e[0].skip_verify && e[0].base.starts_with("https://"));
        assert_eq!(e[1].base, "http://10.1.1.1:5000");
        assert_eq!(r.host_endpoints("quay.io").len(), 1);
        assert!(Registry::new(RegistryConfig {
            mirrors: vec!["ftp://x".into()],
            ..Default::default()
        })
        .is_err());
        assert!(Registry::new(RegistryConfig {
            mirrors: vec!["not a url".into()],
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn method_words() {
        assert_eq!(method_word(&Method::GET), "Get");
        assert_eq!(method_word(&Method::PATCH), "Patch");
    }
}
