//! Typed errors of the OCI export; owns no logic beyond classifying them for exit codes.

use crate::checkpoint::CheckpointError;
use std::path::PathBuf;

/// Everything that can stop an export. Variants carry what a user needs to act.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The checkpoint could not be opened, folded or read (a blob failed its hash, ...).
    #[error("checkpoint {} is unusable", path.display())]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: CheckpointError,
    },
    /// The checkpoint's metadata does not say where a root lived (or says it badly).
    #[error("checkpoint {}: {problem}", path.display())]
    Meta { path: PathBuf, problem: String },
    /// Something the checkpoint holds has no faithful form in an OCI layer.
    #[error("layer {layer} ({phase}): {path:?} cannot be exported: {problem}")]
    Unrepresentable {
        layer: u32,
        phase: String,
        /// The path in the image (bytes shown lossily).
        path: String,
        problem: &'static str,
    },
    /// The shell state recorded with the last exported layer is missing or unreadable.
    #[error("layer `{phase}` has no readable shell state: {reason}")]
    NoShellState { phase: String, reason: String },
    /// `--after PHASE` names no layer.
    #[error("checkpoint {} has no layer named `{phase}` (it has: {available})", path.display())]
    NoSuchLayer {
        path: PathBuf,
        phase: String,
        available: String,
    },
    /// The target directory exists and is not an empty directory.
    #[error("{}: {problem}", path.display())]
    TargetNotUsable {
        path: PathBuf,
        problem: &'static str,
    },
    /// `--tag` is not a valid reference name.
    #[error(
        "--tag {tag:?}: a tag is 1-128 characters of [A-Za-z0-9_.-], not starting with . or -"
    )]
    BadTag { tag: String },
    /// Writing the image failed.
    #[error("{what}: {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How an error ends the command (see [`crate::exit_codes`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// The checkpoint is unusable or cannot be exported: exit 65.
    Checkpoint,
    /// Bad invocation (unknown phase, unusable target, bad tag): exit 2.
    Invocation,
    /// Writing the image failed: exit 70.
    Io,
}

impl OciError {
    /// Whose fault it is.
    pub fn fault(&self) -> Fault {
        match self {
            OciError::Checkpoint { .. }
            | OciError::Meta { .. }
            | OciError::Unrepresentable { .. }
            | OciError::NoShellState { .. } => Fault::Checkpoint,
            OciError::NoSuchLayer { .. }
            | OciError::TargetNotUsable { .. }
            | OciError::BadTag { .. } => Fault::Invocation,
            OciError::Io { .. } => Fault::Io,
        }
    }

    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| OciError::Io { what, path, source }
    }
}
