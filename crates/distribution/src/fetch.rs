//! Plain downloads of a URL (`docker import https://…`, and remote build contexts), through the
//! same per-host TLS settings, retries and error wording as registry requests.

use futures_util::TryStreamExt;
use reqwest::header::HeaderMap;
use reqwest::Method;
use url::Url;

use crate::client::{Credential, Endpoint, Registry, Req, ReqBody};
use crate::error::Error;
use crate::repository::BlobStream;

impl Registry {
    /// GETs `url` (http or https), following redirects; a non-2xx answer is an error.
    pub async fn fetch_url(&self, url: &str) -> Result<BlobStream, Error> {
        let url = Url::parse(url).map_err(|e| Error::invalid(format!("invalid URL {url}: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(Error::invalid(format!(
                "unsupported URL scheme {:?}: only http and https",
                url.scheme()
            )));
        }
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let ep = Endpoint {
            base: format!("{}://{host}", url.scheme()),
            skip_verify: url.scheme() == "https" && self.is_insecure(&host),
            mirror: false,
        };
        let cred = Credential::default();
        let resp = self
            .send(Req {
                method: Method::GET,
                url,
                headers: HeaderMap::new(),
                body: ReqBody::Empty,
                retry: true,
                auth: false,
                ep: &ep,
                scopes: &[],
                cred: &cred,
            })
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(Error::from_response(status.as_u16(), &body));
        }
        let size = resp.content_length();
        let stream = resp
            .bytes_stream()
            .map_err(|e| Error::transport(format!("reading download: {e}")));
        Ok(BlobStream {
            size,
            stream: Box::pin(stream),
        })
    }
}
