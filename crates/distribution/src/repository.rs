//! `Repository`: manifests and blobs of one repository, over the endpoints it can be reached at.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use berth_reference::{validate_tag, Digest, Reference, DEFAULT_DOMAIN};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RANGE,
};
use reqwest::{Method, Response, StatusCode};
use tracing::debug;
use url::Url;

use crate::client::{Credential, Endpoint, Registry, Req, ReqBody, DOCKER_HUB_REGISTRY};
use crate::error::{Error, ErrorKind};
use crate::manifest::{
    detect_media_type, digest_with, Manifest, ACCEPT as MANIFEST_ACCEPT, MAX_MANIFEST_SIZE,
};

/// One repository on one registry (with its mirrors, for Docker Hub pulls), with the
/// credential and access it was opened for. Cheap to clone; clones share the endpoint that
/// last answered.
#[derive(Clone)]
pub struct Repository {
    reg: Registry,
    reference: Reference,
    cred: Credential,
    push: bool,
    endpoints: Arc<[Endpoint]>,
    /// Index into `endpoints` of the one that served the last manifest; `usize::MAX` = none.
    preferred: Arc<AtomicUsize>,
    scopes: Arc<[String]>,
}

/// A blob download. `size` is the number of bytes the stream yields (after `offset`), when
/// the registry said. Content is not verified here: with resumes, only the writer that sees
/// every byte can hash it.
pub struct BlobStream {
    pub size: Option<u64>,
    pub stream: Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
}

impl Stream for BlobStream {
    type Item = Result<Bytes, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Manifest,
    Blob,
    Push,
}

/// Whether a failure at `ep` should move on to the next endpoint. A mirror is never
/// authoritative: any failure there falls back (for blobs too: a mirror may lack a blob of a
/// manifest it served). The registry itself is authoritative except when unreachable, which
/// is what makes https→http fallback work for insecure registries.
fn falls_back(ep: &Endpoint, err: &Error, op: Op) -> bool {
    if err.kind() == ErrorKind::Transport {
        return true;
    }
    ep.mirror && op != Op::Push
}

/// Picks the error to report after every endpoint failed: the registry's own answer over a
/// mirror's, and an HTTP answer over a connection failure.
fn final_error(errors: Vec<(bool, Error)>) -> Error {
    let pick = errors
        .iter()
        .rev()
        .find(|(mirror, e)| !mirror && e.kind() != ErrorKind::Transport)
        .or_else(|| {
            errors
                .iter()
                .find(|(_, e)| e.kind() != ErrorKind::Transport)
        })
        // A server's answer (a 5xx after retries) says more than a refused connection.
        .or_else(|| errors.iter().find(|(_, e)| e.status().is_some()))
        .or_else(|| errors.last());
    match pick {
        Some((_, e)) => e.clone(),
        None => Error::transport("no registry endpoint to try"),
    }
}

async fn error_from(resp: Response) -> Error {
    let status = resp.status().as_u16();
    // Error bodies are small; a huge one is not worth reading.
    let body = if resp.content_length().unwrap_or(0) > 1 << 20 {
        Bytes::new()
    } else {
        resp.bytes().await.unwrap_or_default()
    };
    Error::from_response(status, &body)
}

fn header_u64(h: &HeaderMap, name: reqwest::header::HeaderName) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl Registry {
    /// Opens a repository. For Docker Hub pulls the endpoints are the mirrors first, then
    /// registry-1.docker.io; otherwise the reference's registry over https, plus http for an
    /// insecure registry.
    pub fn repository(&self, reference: &Reference, cred: &Credential, push: bool) -> Repository {
        let mut endpoints = Vec::new();
        if reference.domain() == DEFAULT_DOMAIN {
            if !push {
                endpoints.extend(self.mirror_endpoints());
            }
            endpoints.extend(self.host_endpoints(DOCKER_HUB_REGISTRY));
        } else {
            endpoints.extend(self.host_endpoints(reference.domain()));
        }
        let actions = if push { "pull,push" } else { "pull" };
        Repository {
            reg: self.clone(),
            reference: reference.clone(),
            cred: cred.clone(),
            push,
            endpoints: endpoints.into(),
            preferred: Arc::new(AtomicUsize::new(usize::MAX)),
            scopes: vec![format!("repository:{}:{actions}", reference.path())].into(),
        }
    }
}

impl Repository {
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The repository path on the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        self.reference.path()
    }

    /// Endpoint indexes, the one that last answered first.
    fn order(&self) -> Vec<usize> {
        let p = self.preferred.load(Ordering::Relaxed);
        let mut v: Vec<usize> = (0..self.endpoints.len()).collect();
        if p < v.len() {
            v.retain(|&i| i != p);
            v.insert(0, p);
        }
        v
    }

    fn url(&self, ep: &Endpoint, tail: &str) -> Result<Url, Error> {
        let s = format!("{}/v2/{}/{tail}", ep.base, self.reference.path());
        Url::parse(&s).map_err(|e| Error::invalid(format!("invalid registry URL {s}: {e}")))
    }

    fn req<'a>(
        &'a self,
        ep: &'a Endpoint,
        method: Method,
        url: Url,
        scopes: &'a [String],
    ) -> Req<'a> {
        Req {
            retry: matches!(
                method,
                Method::GET | Method::HEAD | Method::PUT | Method::DELETE
            ),
            method,
            url,
            headers: HeaderMap::new(),
            body: ReqBody::Empty,
            auth: true,
            ep,
            scopes,
            cred: &self.cred,
        }
    }

    /// `name:tag` / `name@digest` in familiar form, for messages.
    fn what(&self, tag_or_digest: &str) -> String {
        let sep = if tag_or_digest.contains(':') {
            '@'
        } else {
            ':'
        };
        format!("{}{sep}{tag_or_digest}", self.reference.familiar_name())
    }

    /// Docker's wording for pull failures (`moby/distribution/errors.go`).
    fn pull_error(&self, e: Error, tag_or_digest: &str) -> Error {
        let name = self.reference.familiar_name();
        match e.kind() {
            ErrorKind::NotFound if e.codes().iter().any(|c| c == "NAME_UNKNOWN") => {
                e.context(format!("repository {name} not found"))
            }
            ErrorKind::NotFound => e.context(format!("manifest for {} not found", self.what(tag_or_digest))),
            ErrorKind::Unauthorized if !self.push && !e.credentials_rejected() => e.context(format!(
                "pull access denied for {name}, repository does not exist or may require 'docker login'"
            )),
            _ => e,
        }
    }

    /// Fetches a manifest by tag or digest. Content fetched by digest is verified; by tag, the
    /// registry's `Docker-Content-Digest` (when sha256) must match the bytes.
    pub async fn get_manifest(&self, tag_or_digest: &str) -> Result<Manifest, Error> {
        let want = parse_tag_or_digest(tag_or_digest)?;
        let mut errors = Vec::new();
        for i in self.order() {
            let ep = &self.endpoints[i];
            match self.manifest_at(ep, tag_or_digest, want.as_ref()).await {
                Ok(m) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(m);
                }
                Err(e) => {
                    debug!(endpoint = %ep.base, "manifest {tag_or_digest}: {e}");
                    // Bad content is bad from any mirror, but unsupported formats are final.
                    let stop =
                        e.kind() == ErrorKind::Unsupported || !falls_back(ep, &e, Op::Manifest);
                    errors.push((ep.mirror, e));
                    if stop {
                        break;
                    }
                }
            }
        }
        Err(self.pull_error(final_error(errors), tag_or_digest))
    }

    async fn manifest_at(
        &self,
        ep: &Endpoint,
        reference: &str,
        want: Option<&Digest>,
    ) -> Result<Manifest, Error> {
        let url = self.url(ep, &format!("manifests/{reference}"))?;
        let mut req = self.req(ep, Method::GET, url, &self.scopes);
        req.headers
            .insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let resp = self.reg.send(req).await?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        if resp
            .content_length()
            .is_some_and(|l| l > MAX_MANIFEST_SIZE as u64)
        {
            return Err(Error::invalid(format!(
                "manifest for {} is larger than {MAX_MANIFEST_SIZE} bytes",
                self.what(reference)
            )));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let header_digest = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v.trim()).ok());
        let bytes = read_limited(resp, MAX_MANIFEST_SIZE).await?;
        let media_type = detect_media_type(content_type.as_deref(), &bytes, &self.what(reference))?;
        let mismatch = |expected: &Digest, got: &Digest| {
            Error::new(
                ErrorKind::DigestMismatch,
                format!(
                    "manifest verification failed for digest {expected}: content has digest {got}"
                ),
            )
        };
        let digest = match want {
            Some(d) => {
                let got = digest_with(d.algorithm(), &bytes).ok_or_else(|| {
                    Error::unsupported(format!("unsupported digest algorithm {}", d.algorithm()))
                })?;
                if &got != d {
                    return Err(mismatch(d, &got));
                }
                got
            }
            None => {
                let got = Digest::sha256_of(&bytes);
                if let Some(h) = header_digest.filter(|h| h.algorithm() == "sha256") {
                    if h != got {
                        return Err(mismatch(&h, &got));
                    }
                }
                got
            }
        };
        debug!(endpoint = %ep.base, %digest, %media_type, "manifest");
        Ok(Manifest {
            media_type,
            digest,
            bytes,
        })
    }

    /// Downloads a blob from `offset` (a `Range` request, to resume). Starts at the endpoint
    /// that served the manifest. Redirects to blob storage are followed; reqwest drops the
    /// `Authorization` header when a redirect changes host.
    pub async fn blob_stream(&self, digest: &Digest, offset: u64) -> Result<BlobStream, Error> {
        let mut errors = Vec::new();
        for i in self.order() {
            let ep = &self.endpoints[i];
            match self.blob_at(ep, digest, offset).await {
                Ok(b) => return Ok(b),
                Err(e) => {
                    debug!(endpoint = %ep.base, "blob {digest}: {e}");
                    let go_on = falls_back(ep, &e, Op::Blob);
                    errors.push((ep.mirror, e));
                    if !go_on {
                        break;
                    }
                }
            }
        }
        Err(final_error(errors))
    }

    async fn blob_at(
        &self,
        ep: &Endpoint,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream, Error> {
        let url = self.url(ep, &format!("blobs/{digest}"))?;
        let mut req = self.req(ep, Method::GET, url, &self.scopes);
        if offset > 0 {
            let v = HeaderValue::from_str(&format!("bytes={offset}-"))
                .map_err(|e| Error::invalid(e.to_string()))?;
            req.headers.insert(RANGE, v);
        }
        let resp = self.reg.send(req).await?;
        let status = resp.status();
        if !status.is_success() {
            if status == StatusCode::RANGE_NOT_SATISFIABLE {
                return Err(Error::invalid(format!(
                    "blob {digest}: offset {offset} is beyond its end"
                )));
            }
            return Err(error_from(resp).await);
        }
        let len = header_u64(resp.headers(), CONTENT_LENGTH);
        let url = resp.url().clone();
        let raw = resp
            .bytes_stream()
            .map(move |r| r.map_err(|e| transport_read_error(&url, &e)));
        if offset > 0 && status != StatusCode::PARTIAL_CONTENT {
            // The server ignored Range and sent the whole blob: skip what the caller has.
            debug!(%digest, offset, "registry ignored Range; skipping locally");
            let mut skip = offset;
            let stream = raw.filter_map(move |r| {
                let out = match r {
                    Ok(mut b) => {
                        if skip >= b.len() as u64 {
                            skip -= b.len() as u64;
                            None
                        } else {
                            let rest = b.split_off(skip as usize);
                            skip = 0;
                            Some(Ok(rest))
                        }
                    }
                    Err(e) => Some(Err(e)),
                };
                std::future::ready(out)
            });
            return Ok(BlobStream {
                size: len.map(|l| l.saturating_sub(offset)),
                stream: Box::pin(stream),
            });
        }
        Ok(BlobStream {
            size: len,
            stream: Box::pin(raw),
        })
    }

    /// `HEAD` on a blob: its size if the registry has it.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<Option<u64>, Error> {
        let mut errors = Vec::new();
        for i in self.order() {
            let ep = &self.endpoints[i];
            let r = async {
                let url = self.url(ep, &format!("blobs/{digest}"))?;
                let resp = self
                    .reg
                    .send(self.req(ep, Method::HEAD, url, &self.scopes))
                    .await?;
                match resp.status() {
                    s if s.is_success() => Ok(Some(
                        header_u64(resp.headers(), CONTENT_LENGTH).unwrap_or(0),
                    )),
                    StatusCode::NOT_FOUND => Ok(None),
                    // HEAD has no body: the status is all there is.
                    s => Err(Error::from_response(s.as_u16(), b"")),
                }
            }
            .await;
            match r {
                Ok(Some(n)) => return Ok(Some(n)),
                Ok(None) if !ep.mirror => return Ok(None),
                Ok(None) => {}
                Err(e) => {
                    let go_on = falls_back(ep, &e, Op::Blob);
                    errors.push((ep.mirror, e));
                    if !go_on {
                        break;
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(None)
        } else {
            Err(final_error(errors))
        }
    }

    /// Starts an upload (or a mount) at the first reachable registry endpoint; mirrors are
    /// read-only.
    async fn start_upload(
        &self,
        query: &str,
        scopes: &[String],
    ) -> Result<(usize, Response, Url), Error> {
        let mut errors = Vec::new();
        for i in self.order() {
            let ep = &self.endpoints[i];
            if ep.mirror {
                continue;
            }
            let r = async {
                let url = self.url(ep, &format!("blobs/uploads/{query}"))?;
                let mut req = self.req(ep, Method::POST, url.clone(), scopes);
                // Starting an upload twice only leaves an abandoned session behind.
                req.retry = true;
                req.headers
                    .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
                let resp = self.reg.send(req).await?;
                Ok::<_, Error>((resp, url))
            }
            .await;
            match r {
                Ok((resp, url)) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok((i, resp, url));
                }
                Err(e) => {
                    let go_on = falls_back(ep, &e, Op::Push);
                    errors.push((false, e));
                    if !go_on {
                        break;
                    }
                }
            }
        }
        Err(final_error(errors))
    }

    /// Cross-repository mount (`POST uploads/?mount=&from=`): true when the registry linked
    /// the blob (201). A 202 means it started a normal upload instead, which is cancelled.
    pub async fn mount_blob(&self, digest: &Digest, from_repo: &str) -> Result<bool, Error> {
        let from = from_repo.trim_start_matches('/');
        let mut scopes = self.scopes.to_vec();
        scopes.push(format!("repository:{from}:pull"));
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from)
            .finish();
        let (i, resp, url) = self.start_upload(&format!("?{q}"), &scopes).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                if let Ok(loc) = location(&resp, &url) {
                    let ep = &self.endpoints[i];
                    let r = self
                        .reg
                        .send(self.req(ep, Method::DELETE, loc, &self.scopes))
                        .await;
                    debug!(?r, "cancelled upload started by a failed mount");
                }
                Ok(false)
            }
            _ => Err(error_from(resp).await),
        }
    }

    /// Uploads a blob of `size` bytes: one streaming PUT, or chunked PATCHes when it is larger
    /// than [`crate::RegistryOptions::monolithic_max`]. The registry verifies the digest.
    pub async fn push_blob(
        &self,
        digest: &Digest,
        size: u64,
        body: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    ) -> Result<(), Error> {
        if size > self.reg.options().monolithic_max {
            let chunk = self.reg.options().chunk_size;
            return self.push_blob_chunked(digest, body, chunk).await;
        }
        let (i, resp, url) = self.start_upload("", &self.scopes).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(error_from(resp).await);
        }
        let mut loc = location(&resp, &url)?;
        loc.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let ep = &self.endpoints[i];
        let mut req = self.req(ep, Method::PUT, loc, &self.scopes);
        req.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        req.headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
        req.body = ReqBody::Once(Some(reqwest::Body::wrap_stream(body)));
        let resp = self.reg.send(req).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(error_from(resp).await);
        }
        debug!(%digest, size, "blob pushed");
        Ok(())
    }

    /// Uploads a blob of unknown size in `chunk_size` PATCHes (each with `Content-Range`,
    /// following the `Location` each response returns), then a closing PUT with the digest.
    pub async fn push_blob_chunked(
        &self,
        digest: &Digest,
        body: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
        chunk_size: usize,
    ) -> Result<(), Error> {
        let chunk_size = chunk_size.max(1);
        let (i, resp, url) = self.start_upload("", &self.scopes).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(error_from(resp).await);
        }
        let ep = &self.endpoints[i];
        let mut loc = location(&resp, &url)?;
        let mut body = Box::pin(body);
        let mut buf = BytesMut::new();
        let mut sent: u64 = 0;
        let mut done = false;
        while !done {
            while buf.len() < chunk_size {
                match body.next().await {
                    Some(Ok(b)) => buf.extend_from_slice(&b),
                    Some(Err(e)) => {
                        return Err(Error::transport(format!("reading blob {digest}: {e}")))
                    }
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            while buf.len() >= chunk_size || (done && !buf.is_empty()) {
                let n = buf.len().min(chunk_size);
                let chunk = buf.split_to(n).freeze();
                let end = sent + n as u64 - 1;
                let mut req = self.req(ep, Method::PATCH, loc.clone(), &self.scopes);
                req.headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                req.headers
                    .insert(CONTENT_LENGTH, HeaderValue::from(n as u64));
                let range = HeaderValue::from_str(&format!("{sent}-{end}"))
                    .map_err(|e| Error::invalid(e.to_string()))?;
                req.headers.insert("Content-Range", range);
                req.body = ReqBody::Bytes(chunk);
                let resp = self.reg.send(req).await?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(error_from(resp)
                        .await
                        .context(format!("uploading blob {digest} at offset {sent}")));
                }
                loc = location(&resp, &loc)?;
                sent = end + 1;
                debug!(%digest, sent, "chunk uploaded");
            }
        }
        loc.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut req = self.req(ep, Method::PUT, loc, &self.scopes);
        req.headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let resp = self.reg.send(req).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(error_from(resp).await);
        }
        debug!(%digest, size = sent, "blob pushed in chunks");
        Ok(())
    }

    /// Uploads a manifest under a tag or its digest; returns its digest (sha256 of `bytes`).
    pub async fn put_manifest(
        &self,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, Error> {
        let want = parse_tag_or_digest(tag_or_digest)?;
        let digest = match &want {
            Some(d) => {
                let got = digest_with(d.algorithm(), bytes).ok_or_else(|| {
                    Error::unsupported(format!("unsupported digest algorithm {}", d.algorithm()))
                })?;
                if &got != d {
                    return Err(Error::new(
                        ErrorKind::DigestMismatch,
                        format!("manifest content has digest {got}, not {d}"),
                    ));
                }
                got
            }
            None => Digest::sha256_of(bytes),
        };
        let ct = HeaderValue::from_str(media_type)
            .map_err(|_| Error::invalid(format!("invalid media type {media_type:?}")))?;
        let body = Bytes::copy_from_slice(bytes);
        let mut errors = Vec::new();
        for i in self.order() {
            let ep = &self.endpoints[i];
            if ep.mirror {
                continue;
            }
            let r = async {
                let url = self.url(ep, &format!("manifests/{tag_or_digest}"))?;
                let mut req = self.req(ep, Method::PUT, url, &self.scopes);
                req.headers.insert(CONTENT_TYPE, ct.clone());
                req.body = ReqBody::Bytes(body.clone());
                let resp = self.reg.send(req).await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(error_from(resp).await)
                }
            }
            .await;
            match r {
                Ok(()) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(digest);
                }
                Err(e) => {
                    let go_on = falls_back(ep, &e, Op::Push);
                    errors.push((false, e));
                    if !go_on {
                        break;
                    }
                }
            }
        }
        Err(final_error(errors))
    }
}

fn transport_read_error(url: &Url, e: &reqwest::Error) -> Error {
    crate::client::transport_error(&Method::GET, url, e).context("reading blob")
}

/// `Some(digest)` for a digest, `None` for a valid tag.
fn parse_tag_or_digest(s: &str) -> Result<Option<Digest>, Error> {
    if s.contains(':') {
        Digest::parse(s)
            .map(Some)
            .map_err(|e| Error::invalid(format!("invalid digest {s:?}: {e}")))
    } else {
        validate_tag(s).map_err(|e| Error::invalid(format!("invalid tag {s:?}: {e}")))?;
        Ok(None)
    }
}

/// The upload `Location`, which may be relative to the request URL.
fn location(resp: &Response, base: &Url) -> Result<Url, Error> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::transport(format!("registry sent no upload Location for {base}")))?;
    base.join(loc)
        .map_err(|e| Error::transport(format!("invalid upload Location {loc:?}: {e}")))
}

async fn read_limited(mut resp: Response, limit: usize) -> Result<Vec<u8>, Error> {
    let url = resp.url().clone();
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| crate::client::transport_error(&Method::GET, &url, &e))?
    {
        if out.len() + chunk.len() > limit {
            return Err(Error::invalid(format!(
                "response from {url} is larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ep(mirror: bool) -> Endpoint {
        Endpoint {
            base: "http://x".into(),
            skip_verify: false,
            mirror,
        }
    }

    #[test]
    fn fallback_rules() {
        let nf = Error::not_found("x");
        let tr = Error::transport("x");
        assert!(falls_back(&ep(true), &nf, Op::Manifest));
        assert!(falls_back(&ep(true), &nf, Op::Blob));
        assert!(!falls_back(&ep(false), &nf, Op::Manifest));
        assert!(falls_back(&ep(false), &tr, Op::Manifest));
        assert!(!falls_back(&ep(true), &nf, Op::Push));
    }

    #[test]
    fn final_error_prefers_registry_answers() {
        let e = final_error(vec![
            (true, Error::not_found("mirror 404")),
            (false, Error::transport("https down")),
            (false, Error::unauthorized("registry 401")),
        ]);
        assert_eq!(e.to_string(), "registry 401");
        let e = final_error(vec![
            (true, Error::not_found("mirror 404")),
            (false, Error::transport("down")),
        ]);
        assert_eq!(e.to_string(), "mirror 404");
        let e = final_error(vec![
            (true, Error::transport("a")),
            (false, Error::transport("b")),
        ]);
        assert_eq!(e.to_string(), "b");
    }

    #[test]
    fn tags_and_digests() {
        assert!(parse_tag_or_digest("latest").unwrap().is_none());
        assert!(parse_tag_or_digest(&format!("sha256:{}", "a".repeat(64)))
            .unwrap()
            .is_some());
        assert_eq!(
            parse_tag_or_digest("sha256:zz").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            parse_tag_or_digest("../x").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}
