//! Image layers on disk and the overlayfs snapshots containers run on.
//!
//! Code map:
//! - [`unpack`]: applies one layer tar to an empty directory, converting OCI whiteouts to
//!   overlayfs whiteouts and refusing entries that would write outside that directory.
//! - [`layer`]: the layer store, one immutable directory per chain id, created by unpacking into
//!   a private staging directory and renaming it into place.
//! - [`overlay`]: the overlayfs `mount(2)`/`umount2(2)` calls and the mount table check.
//! - [`snapshot`]: per-container `upper`/`work`/`merged` directories stacked on store layers.
//! - [`diff`]: a snapshot's upper directory back into an OCI layer tar (commit, build).
//!
//! Invariants:
//! - A directory is visible under its final name in the layer store or the snapshot root only
//!   once it is complete: it is built under a `tmp` directory and renamed, and removal renames it
//!   back under `tmp` before deleting, so a crash never leaves a half-built or half-deleted
//!   layer or snapshot under its real name. `open` discards whatever a crash left in `tmp`.
//! - Unpacking never follows a symlink that is part of the layer being unpacked: parents are
//!   opened one component at a time with `O_NOFOLLOW`, and every metadata call on the entry
//!   itself uses the `*at` form with `AT_SYMLINK_NOFOLLOW`.
//! - Reference counting is not done here: the engine knows which images and containers use a
//!   layer. The store only refuses to remove a layer that another stored layer sits on.

pub mod diff;
pub mod layer;
pub mod overlay;
pub mod snapshot;
pub mod unpack;

mod sys;

pub use diff::{write_diff, DiffError, DiffOptions, DiffStats};
pub use layer::{chain_id, LayerError, LayerInfo, LayerStore};
pub use overlay::{is_mounted, mount_overlay, unmount, MountError};
pub use snapshot::{SnapshotError, SnapshotPaths, Snapshots};
pub use unpack::{unpack_layer, UnpackError, UnpackOptions, UnpackStats};

/// What kind of failure an error is, so callers can map it to a protocol status without
/// matching on every variant of every module's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named layer or snapshot does not exist.
    NotFound,
    /// The input (a tar entry, a digest, an id, a path) is malformed or refused.
    InvalidArgument,
    /// The request conflicts with the current state (exists already, in use, still mounted).
    Conflict,
    /// An I/O or kernel failure, or a corrupt store.
    Internal,
}
