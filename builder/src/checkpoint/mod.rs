//! Checkpoint storage: manifests, content-addressed blobs, snapshots and restores.
//!
//! Layering (pure core at the top, effects at the bottom):
//!
//! ```text
//!   limits     the numbers every reader enforces (§10)                  pure
//!   path       RelPath (bytes, clean, relative) + byte escaping         pure
//!   manifest   Entry / Layer / Index + canonical JSON + per-layer rules  pure
//!   state      fold layers into path → Entry, whole-state rules, diff    pure
//!   rewrite    equal-length old → new byte strings (output paths)        pure
//!   patch      a blob as another with a few byte ranges replaced          pure
//!   ───────────────────────────────────────────────────────────────────────────
//!   blobs      packs/NNN.pack, one per layer, read verified              disk
//!   snapshot   walk roots, stat cache, parallel hash → Layer; scan_root  disk
//!   restore    build tree via O_NOFOLLOW *at calls, rename into place    disk
//!              (or into an existing directory that must stay in place)
//!   overlay    carry old → new source changes into a restored tree       disk
//!              (or compute the resulting state: overlay_state, pure)
//!   staging    contents an import just read, kept as files for the       disk
//!              restore that follows (linked into place, not decompressed again)
//!   store      CheckpointWriter / Checkpoint: the directory as a whole,  disk
//!              imports (verbatim or rewritten)
//!   fsops      thin rustix *at wrappers, no `unsafe`                    syscalls
//! ```
//!
//! Continuing an earlier build (see `docs/checkpoint-format.md` §9): import its layers with
//! this build's output paths ([`CheckpointWriter::import_layers_rewritten`]), restore the
//! trees from the *new* checkpoint ([`Checkpoint::restore_state_into`] for the build
//! directory, which is a mount point), [`Snapshotter::adopt`] the returned state. For an
//! incremental build, [`CheckpointWriter::import_state_rewritten`] brings in the earlier
//! trees, [`overlay_state`] lays the changed sources over the later one as a state, and
//! [`CheckpointWriter::apply_state_over`] brings the live tree to it in place.
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
mod chunk_buffer;
pub mod delta;
pub mod error;
mod fsops;
pub mod limits;
pub mod manifest;
pub mod overlay;
pub(crate) mod parallel;
pub mod patch;
pub mod path;
pub mod restore;
pub mod rewrite;
pub mod snapshot;
pub mod staging;
pub mod state;
pub mod store;

#[cfg(test)]
mod bounds_tests;
#[cfg(test)]
mod reuse_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

pub use blobs::{Expect, Holding};
pub use error::{CheckpointError, IoResultExt, Result};
pub use manifest::{
    ContentHash, Encoding, Entry, EntryKind, Layer, LayerMeta, LayerRef, PackedBlob, RootDiff,
    Timestamp, Xattrs, FORMAT_VERSION,
};
pub use overlay::{
    classify, floor_after, overlay_changes, overlay_diff, overlay_state, OverlayChange,
    OverlayReport,
};
pub use parallel::Gate;
pub use path::RelPath;
pub use restore::{RestoreOptions, RestoreReport};
pub use rewrite::{RewritePair, Rewrites, Translator};
pub use snapshot::{scan_root, LayerSummary, PriorTrees, ReadLayer, RootSummary, Snapshotter};
pub use state::{diff, max_mtime, ChangedFields, RootChanges, RootState, State, StateDiff};
pub use store::{Checkpoint, CheckpointWriter, ContentCheck, VerifyReport};
