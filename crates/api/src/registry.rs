//! Registry-facing endpoints that are not image transfers: `POST /auth` and
//! `GET /images/search`, and the `X-Registry-Auth` header every registry operation carries.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use berth_engine::types::RegistryAuth;
use berth_engine::Engine;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::query::Query;
use crate::server::ok_json;

pub(crate) fn routes() -> Router<Engine> {
    Router::new().route("/auth", post(auth))
}

/// The JSON inside `X-Registry-Auth` (and the body of `POST /auth`): Docker's `AuthConfig`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AuthConfig {
    username: String,
    password: String,
    /// base64 of `user:password`, as config.json stores it; some clients send only this.
    auth: String,
    serveraddress: String,
    identitytoken: String,
    registrytoken: String,
}

impl AuthConfig {
    fn into_domain(self) -> Result<RegistryAuth, ApiError> {
        let (mut username, mut password) = (self.username, self.password);
        if username.is_empty() && !self.auth.is_empty() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(self.auth.trim())
                .map_err(|_| ApiError::bad_request("invalid auth configuration: bad auth field"))?;
            let text = String::from_utf8(raw)
                .map_err(|_| ApiError::bad_request("invalid auth configuration: bad auth field"))?;
            let (u, p) = text.split_once(':').ok_or_else(|| {
                ApiError::bad_request("invalid auth configuration: bad auth field")
            })?;
            username = u.to_string();
            password = p.to_string();
        }
        Ok(RegistryAuth {
            username,
            password,
            identity_token: self.identitytoken,
            registry_token: self.registrytoken,
            server_address: self.serveraddress,
        })
    }
}

/// Decodes `X-Registry-Auth`: base64 (URL-safe as the docker CLI sends it, or standard as
/// older SDKs do, padded or not) of an `AuthConfig`. Absent or empty means anonymous.
pub(crate) fn registry_auth(headers: &HeaderMap) -> Result<RegistryAuth, ApiError> {
    let Some(value) = headers.get("x-registry-auth") else {
        return Ok(RegistryAuth::default());
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header"))?
        .trim();
    if text.is_empty() {
        return Ok(RegistryAuth::default());
    }
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let raw = [URL_SAFE, URL_SAFE_NO_PAD, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|e| e.decode(text).ok())
        .ok_or_else(|| ApiError::bad_request("invalid X-Registry-Auth header: not base64"))?;
    let cfg: AuthConfig = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Auth header: {e}")))?;
    cfg.into_domain()
}

async fn auth(State(engine): State<Engine>, body: Bytes) -> ApiResult {
    let cfg: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid auth configuration: {e}")))?;
    let res = engine.login(&cfg.into_domain()?).await?;
    ok_json(&serde_json::json!({
        "Status": "Login Succeeded",
        "IdentityToken": res.identity_token.unwrap_or_default(),
    }))
}

/// `GET /images/search` (routed by the images dispatcher, whose wildcard owns `/images/…`).
pub(crate) async fn search(engine: &Engine, headers: &HeaderMap, q: &Query) -> ApiResult {
    let term = q.get("term").unwrap_or("");
    if term.is_empty() {
        return Err(ApiError::bad_request("term must not be empty"));
    }
    let limit = match q.int("limit")? {
        None | Some(0) => None,
        Some(n) => Some(u32::try_from(n).map_err(|_| {
            ApiError::bad_request(format!("limit {n} is outside the range of [1, 100]"))
        })?),
    };
    let hits = engine
        .search(term, limit, &q.filters()?, &registry_auth(headers)?)
        .await?;
    let out: Vec<_> = hits
        .iter()
        .map(|h| {
            serde_json::json!({
                "name": h.name,
                "description": h.description,
                "star_count": h.star_count,
                "is_official": h.is_official,
                "is_automated": h.is_automated,
            })
        })
        .collect();
    ok_json(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert("x-registry-auth", v);
        }
        h
    }

    #[test]
    fn decodes_what_clients_send() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let json = r#"{"username":"me","password":"p?>>","serveraddress":"127.0.0.1:5000"}"#;
        for enc in [URL_SAFE.encode(json), STANDARD.encode(json)] {
            let a = registry_auth(&headers(&enc)).expect("decodes");
            assert_eq!(a.username, "me");
            assert_eq!(a.password, "p?>>");
            assert_eq!(a.server_address, "127.0.0.1:5000");
        }
        let auth_only = URL_SAFE.encode(format!(r#"{{"auth":"{}"}}"#, STANDARD.encode("u:p:q")));
        let a = registry_auth(&headers(&auth_only)).expect("decodes");
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p:q"));
        // The docker CLI's anonymous header.
        assert_eq!(
            registry_auth(&headers("e30=")).expect("decodes"),
            RegistryAuth::default()
        );
        assert_eq!(
            registry_auth(&HeaderMap::new()).expect("absent"),
            RegistryAuth::default()
        );
        let bad = registry_auth(&headers("%%%")).err().map(|e| e.status());
        assert_eq!(bad, Some(axum::http::StatusCode::BAD_REQUEST));
    }
}
