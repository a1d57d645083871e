//! Registry client for the Docker Registry HTTP API v2 / OCI distribution spec: what
//! `docker pull`, `push`, `login` and `search` need from a registry.
//!
//! Layout:
//! - `client` — [`Registry`] (configuration, endpoints, per-host HTTP clients, authentication
//!   with a bearer-token cache, `login`) and the single `send` path with retries;
//! - `repository` — [`Repository`]: manifests and blobs of one repository, endpoint fallback
//!   (mirrors, https→http for insecure registries), uploads (monolithic and chunked), mounts;
//! - `challenge` — `WWW-Authenticate` parsing;
//! - `hosts` — insecure-registry matching and `certs.d` TLS settings;
//! - `manifest` — media types, [`Manifest`], schema 1 refusal;
//! - `platform` — [`Platform`] and [`select_platform`] for indexes / manifest lists;
//! - `search` — Docker Hub's `/v1/search`;
//! - `fetch` — plain URL downloads (`import` from a URL, remote build contexts);
//! - `error` — [`Error`] with [`ErrorKind`], and the registry's JSON error bodies.
//!
//! Written on reqwest rather than `oci-client`: oci-client has one set of extra root
//! certificates for all hosts and no client certificates (Docker's `certs.d` is per host),
//! no mirrors or endpoint fallback, no retries, and its blob API pulls into its own writers
//! rather than handing back a resumable stream.

mod challenge;
mod client;
mod error;
mod fetch;
mod hosts;
mod manifest;
mod platform;
mod repository;
mod search;

pub use berth_reference::{Digest, Reference};
pub use challenge::{parse_challenges, Challenge};
pub use client::{Credential, Registry, RegistryConfig, RegistryOptions, DOCKER_HUB_REGISTRY};
pub use error::{parse_error_body, Error, ErrorKind, RegistryError};
pub use hosts::InsecureList;
pub use manifest::{
    is_schema1, Manifest, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED,
    DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST,
};
/// oci-spec's descriptor, as [`select_platform`] returns it.
pub use oci_spec::image::Descriptor;
pub use platform::{select_platform, Platform};
pub use repository::{BlobStream, Repository};
pub use search::SearchResult;
