//! Docker Hub's search API (`GET /v1/search`), which the Engine API's `/images/search` fronts.

use reqwest::header::{HeaderMap, ACCEPT};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::client::{Credential, Endpoint, Registry, Req, ReqBody};
use crate::error::Error;

/// One search hit, as Docker Hub returns it and the Engine API passes it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SearchResult {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

#[derive(Deserialize)]
struct SearchResponse {
    #[serde(default)]
    results: Vec<SearchResult>,
}

impl Registry {
    /// Searches an index (`https://index.docker.io`, with or without `/v1/`) for `term`.
    /// `limit` must be 1..=100, as Docker enforces.
    pub async fn search(
        &self,
        index_url: &str,
        term: &str,
        limit: u32,
        cred: &Credential,
    ) -> Result<Vec<SearchResult>, Error> {
        if !(1..=100).contains(&limit) {
            return Err(Error::invalid(format!(
                "limit {limit} is outside the range of [1, 100]"
            )));
        }
        let base = index_url.trim().trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        let base = if base.contains("://") {
            base.to_string()
        } else {
            format!("https://{base}")
        };
        let mut url = Url::parse(&format!("{base}/v1/search"))
            .map_err(|e| Error::invalid(format!("invalid index URL {index_url}: {e}")))?;
        url.query_pairs_mut()
            .append_pair("q", term)
            .append_pair("n", &limit.to_string());
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let ep = Endpoint {
            base: base.clone(),
            skip_verify: url.scheme() == "https" && self.is_insecure(&host),
            mirror: false,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        let resp = self
            .send(Req {
                method: Method::GET,
                url,
                headers,
                body: ReqBody::Empty,
                retry: true,
                auth: true,
                ep: &ep,
                scopes: &[],
                cred,
            })
            .await?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::transport(format!("reading search response: {e}")))?;
        if !status.is_success() {
            return Err(Error::from_response(status.as_u16(), &body));
        }
        let r: SearchResponse = serde_json::from_slice(&body)
            .map_err(|e| Error::transport(format!("invalid search response: {e}")))?;
        Ok(r.results)
    }
}
