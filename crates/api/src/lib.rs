//! The Docker Engine API over HTTP/1.1 on a Unix socket.
//!
//! This is the only crate that knows HTTP. It routes requests, negotiates the API version,
//! converts Docker's wire models (bollard-stubs) into the engine's plain types and back, maps
//! engine error kinds to status codes, and carries container output: multiplexed log streams and
//! hijacked attach connections. It makes no decisions of its own about containers or images —
//! those belong to [`berth_engine::Engine`].
//!
//! Code map: `server` (listener, router, version prefix, headers), `error` (status codes),
//! `query` (Docker's query-string rules), `stream` (framing, hijack), `convert` (wire ↔ domain),
//! `progress` (JSON progress streams), and one module per resource: `system`, `containers`,
//! `images`, `registry` (`/auth`, search, `X-Registry-Auth`), `build` (`/build`).

mod build;
mod containers;
mod convert;
mod error;
mod exec;
mod images;
mod networks;
mod progress;
mod query;
mod registry;
mod server;
mod stats;
mod stream;
mod system;
mod upload;
mod volumes;

pub use error::ApiError;
pub use server::{router, serve, ApiVersion};

/// The highest API version served, advertised in the `Api-Version` header.
pub const API_VERSION: &str = "1.51";

/// The lowest API version accepted.
pub const MIN_API_VERSION: &str = "1.24";
