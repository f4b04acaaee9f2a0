//! Checkpoint storage: manifests, content-addressed blobs, snapshots and restores.
//!
//! Layering (pure core at the top, effects at the bottom):
//!
//! ```text
//!   path       RelPath (bytes, clean, relative) + byte escaping         pure
//!   manifest   Entry / Layer / Index + canonical JSON + per-layer rules  pure
//!   state      fold layers into path → Entry, whole-state rules, diff    pure
//!   ───────────────────────────────────────────────────────────────────────────
//!   blobs      blobs/ab/<blake3>.zst|.raw, written once, read verified   disk
//!   snapshot   walk roots, stat cache, parallel hash → Layer             disk
//!   restore    build tree via O_NOFOLLOW *at calls, rename into place    disk
//!   store      CheckpointWriter / Checkpoint: the directory as a whole   disk
//!   fsops      the only `unsafe`: thin libc *at wrappers                 syscalls
//! ```
//!
//! Typical use from the phase loop:
//!
//! ```no_run
//! # use checkpoint_builder::checkpoint::*;
//! # fn main() -> Result<()> {
//! let mut writer = CheckpointWriter::create("/nix/store/...-checkpoint".as_ref())?;
//! let mut snap = Snapshotter::new(vec![
//!     ("build".into(), "/build".into()),
//!     ("out".into(), "/nix/store/...-out".into()),
//! ])?;
//! let shell = writer.put_blob(b"declare -x ...")?;
//! let meta = LayerMeta {
//!     name: "configurePhase".into(),
//!     attachments: [("shell-state".to_string(), shell)].into_iter().collect(),
//!     meta: serde_json::json!({ "key": "..." }),
//! };
//! snap.snapshot(&mut writer, meta)?;
//! writer.finish()?;
//!
//! let ck = Checkpoint::open("/nix/store/...-checkpoint".as_ref())?;
//! ck.verify()?;
//! ck.restore(0, "build", "/tmp/state-after-configure".as_ref())?;
//! # Ok(()) }
//! ```
//!
//! The on-disk format is specified in `docs/checkpoint-format.md`.

pub mod blobs;
pub mod error;
mod fsops;
pub mod manifest;
pub mod path;
pub mod restore;
pub mod snapshot;
pub mod state;
pub mod store;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use error::{CheckpointError, IoResultExt, Result};
pub use manifest::{
    ContentHash, Entry, EntryKind, Layer, LayerMeta, LayerRef, RootDiff, Timestamp, Xattrs,
    FORMAT_VERSION,
};
pub use path::RelPath;
pub use restore::RestoreReport;
pub use snapshot::{LayerSummary, RootSummary, Snapshotter};
pub use state::{diff, ChangedFields, RootChanges, RootState, State, StateDiff};
pub use store::{Checkpoint, CheckpointWriter, VerifyReport};
