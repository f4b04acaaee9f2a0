//! Typed errors of the checkpoint engine; owns no logic beyond attaching context.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias used throughout the checkpoint modules.
pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;

/// Everything that can go wrong while snapshotting, writing, reading, verifying or restoring
/// a checkpoint. Variants carry the path (on disk or inside the manifest) a user needs.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A filesystem operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What we tried to do ("open", "read", "mkdir", ...).
        op: &'static str,
        /// The path it was done on.
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A manifest or index was written by another format version.
    #[error("{}: unsupported checkpoint format version: expected {expected}, found {found}", file.display())]
    FormatVersion {
        /// The file that carried the version.
        file: PathBuf,
        /// The version this build understands.
        expected: u32,
        /// The version found in the file.
        found: u32,
    },

    /// A manifest or index is not valid JSON of the expected shape.
    #[error("{}: malformed checkpoint file", file.display())]
    Parse {
        /// The file that failed to parse.
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A path, symlink target or xattr is not acceptable.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path, in the escaped manifest form.
        path: String,
        /// Why it is rejected.
        reason: &'static str,
    },

    /// A manifest breaks one of the rules of docs/checkpoint-format.md.
    #[error("layer {layer}, root {root:?}, path {path:?}: {problem}")]
    Manifest {
        /// The layer index where the rule broke.
        layer: u32,
        /// The root name.
        root: String,
        /// The path (escaped), or empty when the rule is about the layer as a whole.
        path: String,
        /// What rule broke.
        problem: String,
    },

    /// The index or a layer file does not match what the index says about it.
    #[error("{}: {problem}", file.display())]
    Index {
        /// The file concerned.
        file: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// A blob referenced by a manifest is not in the checkpoint.
    #[error("blob {hash} is missing from {}", dir.display())]
    BlobMissing {
        /// The blake3 hash (hex) of the missing content.
        hash: String,
        /// The blob directory searched.
        dir: PathBuf,
    },

    /// A blob's content does not hash to its name (or does not decompress).
    #[error("blob {} is corrupt: {problem}", path.display())]
    BlobCorrupt {
        /// The blob file.
        path: PathBuf,
        /// What is wrong (hash mismatch, decompression error, ...).
        problem: String,
    },

    /// The checkpoint directory holds something the format does not allow.
    #[error("{}: unexpected entry in checkpoint: {problem}", path.display())]
    UnexpectedFile {
        /// The unexpected file.
        path: PathBuf,
        /// Why it is not allowed.
        problem: &'static str,
    },

    /// A layer index past the end.
    #[error("no layer {index}: the checkpoint has {count} layers")]
    NoSuchLayer {
        /// The requested index.
        index: u32,
        /// How many layers exist.
        count: u32,
    },

    /// A root name that the checkpoint (or snapshotter) does not know.
    #[error("no root named {root:?}")]
    NoSuchRoot {
        /// The requested root.
        root: String,
    },

    /// A root name that is not allowed (see docs/checkpoint-format.md).
    #[error("invalid root name {root:?}: {reason}")]
    InvalidRootName {
        /// The rejected name.
        root: String,
        /// Why.
        reason: &'static str,
    },

    /// Restore target is not empty or not a directory.
    #[error("restore target {} {problem}", path.display())]
    TargetNotUsable {
        /// The target path.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// Restoring would have gone through a symlink or outside the target.
    #[error("refusing unsafe restore of {path:?} under {}: {problem}", target.display())]
    UnsafeRestore {
        /// The restore target.
        target: PathBuf,
        /// The path inside the tree (escaped).
        path: String,
        /// What made it unsafe.
        problem: String,
    },

    /// Applying a layer on top of a tree found the tree not in the expected previous state.
    #[error("cannot apply layer on {}: {path:?} {problem}", target.display())]
    TreeMismatch {
        /// The tree root.
        target: PathBuf,
        /// The path inside the tree (escaped).
        path: String,
        /// What was expected.
        problem: String,
    },

    /// A file changed while it was being snapshotted.
    #[error("{} changed while it was being snapshotted", path.display())]
    ChangedDuringSnapshot {
        /// The file.
        path: PathBuf,
    },

    /// The snapshotter and the writer disagree about how many layers exist.
    #[error("snapshotter has recorded {snapshotter} layers but the writer holds {writer}")]
    OutOfSync {
        /// Layers the snapshotter believes were written.
        snapshotter: u32,
        /// Layers the writer holds.
        writer: u32,
    },

    /// A worker thread panicked.
    #[error("a snapshot worker thread panicked")]
    WorkerPanicked,

    /// A rewrite pair cannot be applied in place.
    #[error("invalid rewrite {old:?} -> {new:?}: {problem}")]
    InvalidRewrite {
        /// The byte string to replace (escaped).
        old: String,
        /// Its replacement (escaped).
        new: String,
        /// Why the pair is refused.
        problem: &'static str,
    },

    /// Rewriting a layer produced something the format does not allow (two paths or names
    /// rewritten to the same one, a string that is no longer UTF-8, ...).
    #[error("rewriting layer {layer}: {problem}")]
    RewriteConflict {
        /// The layer being imported.
        layer: u32,
        /// What went wrong.
        problem: String,
    },

    /// A file of an imported layer still holds a piece of an earlier output path that no
    /// rewrite can update (a compiler stored the path in pieces): the layer cannot be
    /// restored whole (`crate::reuse::base::piece_held`).
    #[error(
        "layer {layer}: {held} that no rewrite can update: a compiler stored the path in pieces"
    )]
    PathPieceHeld {
        /// The layer whose tree holds it.
        layer: u32,
        /// Which file holds what (`build/src/cpio holds a piece of output `out` (`w-cpio-2.13`)`).
        held: String,
    },

    /// An operation that must start a checkpoint was called on a writer holding layers.
    #[error("the checkpoint writer already holds {layers} layers; rewritten layers must be imported first")]
    WriterNotEmpty {
        /// Layers already written.
        layers: u32,
    },

    /// A source file of an overlay no longer matches the state it was scanned into.
    #[error("{} changed since it was scanned", path.display())]
    SourceChanged {
        /// The file.
        path: PathBuf,
    },

    /// A restored path would be too long for the builder (or Nix) to reach it again.
    #[error("restoring {path:?} under {} would make a path of {length} bytes; paths must stay below PATH_MAX ({limit} bytes with the NUL)", target.display())]
    PathTooLong {
        /// The restore target.
        target: PathBuf,
        /// The longest path of the state (escaped).
        path: String,
        /// The length of target + `/` + path.
        length: usize,
        /// `PATH_MAX`.
        limit: usize,
    },

    /// Content a writer was asked to store is beyond a limit of the format
    /// (docs/checkpoint-format.md §10); nothing was stored.
    #[error("{what} of {found} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was too large ("attachment", ...).
        what: &'static str,
        /// Its size.
        found: u64,
        /// The limit.
        limit: u64,
    },

    /// Restoring into an existing directory failed after its previous content was removed:
    /// the directory holds part of the restored tree and must be discarded.
    #[error("restore into {} failed after its previous content was removed; the directory is incomplete", target.display())]
    RestoreIncomplete {
        /// The directory restored into.
        target: PathBuf,
        /// What failed.
        #[source]
        source: Box<CheckpointError>,
    },
}

impl CheckpointError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CheckpointError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Attaches an operation and a path to an `io::Error`.
pub trait IoResultExt<T> {
    /// Converts the error into [`CheckpointError::Io`] with `op` and `path`.
    fn at(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| CheckpointError::io(op, path, e))
    }
}
