//! Errors of the test harness itself (not of the build under test: a failing build is a
//! [`crate::BuildResult`] with `success == false`, not an error).

use std::path::PathBuf;

/// What went wrong while driving Nix or reading its answers.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The environment cannot run the tests at all.
    #[error("cannot run the Nix integration tests: {0}")]
    Environment(String),
    /// A command could not be started.
    #[error("could not run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// A harness command (not the build under test) failed.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    /// Reading or writing a file failed.
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Nix answered something the harness does not understand.
    #[error("unexpected output from `{command}`: {detail}")]
    Unexpected { command: String, detail: String },
}

/// Attaches the path and the action to an `io::Error`.
pub trait IoContext<T> {
    /// Wraps the error into [`HarnessError::Io`].
    fn io_context(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T, HarnessError>;
}

impl<T> IoContext<T> for Result<T, std::io::Error> {
    fn io_context(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T, HarnessError> {
        self.map_err(|source| HarnessError::Io {
            action,
            path: path.into(),
            source,
        })
    }
}
