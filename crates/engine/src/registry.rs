//! The engine's side of registries: the shared client built from daemon.json, credentials in
//! the client's terms, registry errors in the engine's, `login` and `search`.

use berth_distribution::{Credential, ErrorKind as RegErrorKind, Registry, RegistryConfig};
use berth_reference::{Digest, Reference};

use crate::error::{EngineError, ErrorKind, Result};
use crate::types::{Filters, LoginResult, RegistryAuth, SearchHit};
use crate::{Engine, EngineConfig};

/// Docker Hub's index, which `search` and `login` without a server address talk to.
const DOCKER_HUB_INDEX: &str = "https://index.docker.io/v1/";

pub(crate) fn build_registry(config: &EngineConfig) -> Result<Registry> {
    Registry::new(RegistryConfig {
        mirrors: config.registry_mirrors.clone(),
        insecure: config.insecure_registries.clone(),
        certs_dir: config.certs_dir.clone(),
    })
    .map_err(|e| EngineError::invalid(format!("registry configuration: {e}")))
}

pub(crate) fn credential(auth: &RegistryAuth) -> Credential {
    Credential {
        username: auth.username.clone(),
        password: auth.password.clone(),
        identity_token: auth.identity_token.clone(),
        registry_token: auth.registry_token.clone(),
    }
}

/// A registry failure as an engine error. Unknown manifests and repositories are 404s, denied
/// access 401-like errors are reported as dockerd does (a 404 for pulls, so the CLI prints the
/// message as is), bad input 400, and everything else a server fault.
pub(crate) fn registry_error(e: berth_distribution::Error) -> EngineError {
    let kind = match e.kind() {
        RegErrorKind::NotFound | RegErrorKind::Unauthorized => ErrorKind::NotFound,
        RegErrorKind::InvalidArgument | RegErrorKind::Unsupported => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    };
    EngineError::new(kind, e.to_string())
}

pub(crate) fn parse_digest(s: &str) -> Result<Digest> {
    Digest::parse(s).map_err(|e| EngineError::invalid(format!("invalid digest {s:?}: {e}")))
}

/// `name` with `digest` instead of any tag (`docker.io/library/busybox@sha256:…`).
pub(crate) fn with_digest(name: &Reference, digest: &Digest) -> Result<Reference> {
    Reference::parse_normalized(&format!("{}@{digest}", name.name()))
        .map_err(|e| EngineError::internal(e.to_string()))
}

impl Engine {
    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Docker's `POST /auth`: checks the credentials against the registry.
    pub async fn login(&self, auth: &RegistryAuth) -> Result<LoginResult> {
        let server = if auth.server_address.trim().is_empty() {
            DOCKER_HUB_INDEX
        } else {
            auth.server_address.trim()
        };
        match self.registry().login(server, &credential(auth)).await {
            Ok(identity_token) => Ok(LoginResult { identity_token }),
            // dockerd answers rejected credentials with 401; the API maps NotFound from
            // registry_error to 404, which would be wrong here, so keep the kind explicit.
            Err(e) if e.kind() == RegErrorKind::Unauthorized => {
                Err(EngineError::new(ErrorKind::Unauthorized, e.to_string()))
            }
            Err(e) => Err(registry_error(e)),
        }
    }

    /// Docker's `GET /images/search`: a term may name its index (`myreg:5000/redis`), else
    /// Docker Hub's is asked.
    pub async fn search(
        &self,
        term: &str,
        limit: Option<u32>,
        filters: &Filters,
        auth: &RegistryAuth,
    ) -> Result<Vec<SearchHit>> {
        let accept = search_filter(filters)?;
        let (index, term) = split_search_term(term);
        let index_url = match index {
            Some(host) if self.registry().is_insecure(host) => format!("http://{host}"),
            Some(host) => format!("https://{host}"),
            None => DOCKER_HUB_INDEX.to_string(),
        };
        let limit = limit.unwrap_or(25);
        if !(1..=100).contains(&limit) {
            return Err(EngineError::invalid(format!(
                "limit {limit} is outside the range of [1, 100]"
            )));
        }
        let hits = self
            .registry()
            .search(&index_url, term, limit, &credential(auth))
            .await
            .map_err(|e| match e.kind() {
                RegErrorKind::InvalidArgument => EngineError::invalid(e.to_string()),
                _ => EngineError::internal(e.to_string()),
            })?;
        Ok(hits
            .into_iter()
            .filter(|h| accept(h.star_count, h.is_official, h.is_automated))
            .map(|h| SearchHit {
                name: h.name,
                description: h.description,
                star_count: h.star_count,
                is_official: h.is_official,
                is_automated: h.is_automated,
            })
            .collect())
    }
}

type SearchFilter = Box<dyn Fn(u64, bool, bool) -> bool + Send>;

/// Docker's search filters: `stars=N` (at least N), `is-official`, `is-automated`.
fn search_filter(filters: &Filters) -> Result<SearchFilter> {
    let mut min_stars = 0u64;
    let mut official = None;
    let mut automated = None;
    let parse_bool = |key: &str, v: &str| match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(EngineError::invalid(format!("invalid filter '{key}={v}'"))),
    };
    for (key, values) in filters {
        for v in values {
            match key.as_str() {
                "stars" => {
                    let n: u64 = v
                        .parse()
                        .map_err(|_| EngineError::invalid(format!("invalid filter 'stars={v}'")))?;
                    min_stars = min_stars.max(n);
                }
                "is-official" => official = Some(parse_bool(key, v)?),
                "is-automated" => automated = Some(parse_bool(key, v)?),
                other => return Err(EngineError::invalid(format!("invalid filter '{other}'"))),
            }
        }
    }
    Ok(Box::new(move |stars, is_official, is_automated| {
        stars >= min_stars
            && official.is_none_or(|o| o == is_official)
            && automated.is_none_or(|a| a == is_automated)
    }))
}

/// Splits `myreg:5000/redis` into its index and term, as Docker's `ParseSearchIndexInfo`:
/// the first component names an index when it looks like a host.
fn split_search_term(term: &str) -> (Option<&str>, &str) {
    match term.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            if first == "docker.io" || first == "index.docker.io" {
                (None, rest)
            } else {
                (Some(first), rest)
            }
        }
        _ => (None, term),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_terms() {
        assert_eq!(split_search_term("redis"), (None, "redis"));
        assert_eq!(split_search_term("me/redis"), (None, "me/redis"));
        assert_eq!(
            split_search_term("127.0.0.1:5000/redis"),
            (Some("127.0.0.1:5000"), "redis")
        );
        assert_eq!(split_search_term("docker.io/redis"), (None, "redis"));
    }

    #[test]
    fn search_filters() {
        let mut f = Filters::new();
        f.insert("stars".into(), vec!["3".into()]);
        f.insert("is-official".into(), vec!["true".into()]);
        let accept = search_filter(&f).expect("valid filters");
        assert!(accept(3, true, false));
        assert!(!accept(2, true, false));
        assert!(!accept(9, false, false));
        f.insert("nope".into(), vec!["1".into()]);
        assert!(search_filter(&f).is_err());
    }

    #[test]
    fn registry_errors_keep_their_words() {
        let e = registry_error(berth_distribution::Error::new(
            RegErrorKind::NotFound,
            "manifest for busybox:nope not found",
        ));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.message().contains("busybox:nope"));
    }
}
