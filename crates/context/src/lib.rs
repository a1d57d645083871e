//! The build context of `docker build`, both ends of it.
//!
//! The client side (the CLI) turns a directory into the tar stream `POST /build` carries, the
//! way the docker CLI does for its legacy builder; the daemon side unpacks such a stream and
//! answers the builder's questions about what is in it.
//!
//! Code map:
//! - [`pattern`]: `.dockerignore` files and their patterns, matched exactly as moby's
//!   `patternmatcher` does (later patterns win, `!` exceptions, `**`, `?`, `[...]`).
//! - [`send`]: the context tar of a local directory ([`LocalContext`]): deterministic,
//!   streamed into any `Write`, `.dockerignore` applied, the Dockerfile and `.dockerignore`
//!   always sent, a Dockerfile from outside the directory added under a hidden name.
//! - [`extract`]: a context tar unpacked into a directory the daemon owns, refusing every
//!   entry that would land outside it or write through a symlink.
//!   [`extract_with_digests`] also takes each file's [`content_digest`] on the way, the
//!   content part of the build cache's keys.
//! - [`root`]: the in-context resolution of a source path (symlinks followed, never out of
//!   the root), the Dockerfile, and the build files `.dockerignore` removes.
//!
//! Invariants:
//! - Nothing here follows a symlink found in a context while reading or writing files:
//!   symlinks are archived and extracted as symlinks, and only [`resolve_in_root`] follows
//!   them, lexically clamped to the context root the way moby's `FollowSymlinkInScope` does.
//! - Output is a function of the input alone: directory entries are visited in byte order of
//!   their names, so the same tree gives the same tar.
//! - Whole contexts are never held in memory: tars are written and read as streams, files are
//!   hashed through a fixed buffer.
//!
//! A daemon-side builder uses it like this:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let body = std::io::empty();
//! let dir = std::path::Path::new("/var/lib/berth/tmp/build-1");
//! berth_context::extract(body, dir, &berth_context::ExtractOptions::default())?;
//! // The `dockerfile` query parameter; read it before the build files are removed.
//! let dockerfile = berth_context::locate_dockerfile(dir, "Dockerfile")?;
//! let text = std::fs::read(&dockerfile.path)?;
//! berth_context::remove_build_files(dir, &dockerfile.name)?;
//! // For `COPY app/ /srv/`: what to copy.
//! let source = berth_context::resolve_in_root(dir, "app/")?;
//! # let _ = (text, source);
//! # Ok(())
//! # }
//! ```

pub mod extract;
pub mod pattern;
pub mod root;
pub mod send;
pub mod urlutil;

pub use extract::{
    content_digest, extract, extract_with_digests, ExtractError, ExtractOptions, ExtractStats,
    FileDigests,
};
pub use pattern::{clean, parse_ignore, MatchInfo, Pattern, PatternError, PatternMatcher};
pub use root::{
    locate_dockerfile, remove_build_files, resolve_in_root, LocatedDockerfile, RootError,
};
pub use send::{
    dockerfile_tar, hidden_dockerfile_name, is_archive, ContextError, LocalContext, TarStats,
};
pub use urlutil::{is_git_url, is_url};

/// The Dockerfile's name when none is given.
pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";

/// The ignore file at the root of a context.
pub const DOCKERIGNORE: &str = ".dockerignore";

/// What kind of failure an error is, so callers can map it to a protocol status without
/// matching on every variant of every module's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A named file (the Dockerfile, a COPY source) is not in the context.
    NotFound,
    /// The input is malformed or refused: a bad pattern, a hostile tar entry, a path that
    /// leaves the context.
    InvalidArgument,
    /// An I/O failure.
    Internal,
}
