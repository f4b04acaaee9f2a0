//! What an inspection command can fail with, and the exit code and hint each failure maps to.

use crate::checkpoint::CheckpointError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    #[error("checkpoint {path} is unusable")]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: CheckpointError,
    },
    #[error("checkpoint {path} has no layer named `{phase}` (it has: {available})")]
    NoSuchLayer {
        path: PathBuf,
        phase: String,
        available: String,
    },
    /// A development cache directory that cannot be used, or has no such entry: a bad
    /// argument, not a bad checkpoint.
    #[error("development cache {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
    /// A checkpoint whose layers cannot be decoded (attachments, keys).
    #[error("checkpoint {path} is unusable: {reason}")]
    Undecodable { path: PathBuf, reason: String },
    #[error("restore target {path} {problem}")]
    Target {
        path: PathBuf,
        problem: &'static str,
    },
    /// The checkpoint's deepest path does not fit below this target (a shorter one works).
    #[error("restore target {path} is too deep for this checkpoint")]
    TargetTooDeep {
        path: PathBuf,
        #[source]
        source: CheckpointError,
    },
    #[error("layer `{phase}` has no usable shell state: {reason}")]
    NoShellState { phase: String, reason: String },
    /// A layer's shell state cannot be restored without running code it carries (or is
    /// unreadable): the whole checkpoint is refused, whatever the command.
    #[error("checkpoint {path} is unusable: {reason}")]
    ShellState { path: PathBuf, reason: String },
    #[error("{what}: {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// Whether the checkpoint itself is at fault (exit code `CHECKPOINT_UNUSABLE`).
    pub fn is_checkpoint_fault(&self) -> bool {
        matches!(
            self,
            CliError::Checkpoint { .. }
                | CliError::Undecodable { .. }
                | CliError::NoShellState { .. }
                | CliError::ShellState { .. }
        )
    }

    /// The status the command exits with: 65 when the checkpoint is at fault, 2 otherwise
    /// (a bad argument or target; an I/O error on the user's side).
    pub fn exit_code(&self) -> i32 {
        if self.is_checkpoint_fault() {
            crate::exit_codes::CHECKPOINT_UNUSABLE
        } else {
            crate::exit_codes::BUILDER_INPUT
        }
    }

    /// What to try next, where the error suggests something.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::TargetTooDeep { .. } => Some("restore into a directory with a shorter path"),
            CliError::Target { .. } => Some("restore into a new or empty directory"),
            _ => None,
        }
    }
}
