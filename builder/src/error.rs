//! The one error a command or a build ends with: what failed and why (its cause chain), the
//! exit code it maps to (the API in [`crate::exit_codes`]) and a hint on what to do next.
//! `main` turns it into output and a status in one place ([`report`]).

use crate::build::BuildError;
use crate::cli::CliError;
use crate::exit_codes;
use crate::oci::{Fault, OciError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// A command line the builder cannot run (unknown command or option, missing argument).
    #[error("{0}")]
    Usage(String),
    /// An inspection command (`inspect`, `verify`, `restore`, `shell`, `diff`, `cache`).
    #[error("{command} failed")]
    Command {
        command: &'static str,
        #[source]
        source: CliError,
    },
    #[error("export-oci failed")]
    ExportOci(#[source] OciError),
    /// A build (what Nix runs) that could not start, run or finish its checkpoint.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The in-phase `__capture` helper.
    #[error("__capture failed")]
    Capture(#[source] std::io::Error),
}

impl Error {
    /// The status the process exits with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => exit_codes::BUILDER_INPUT,
            Error::Command { source, .. } => source.exit_code(),
            Error::ExportOci(e) => match e.fault() {
                Fault::Checkpoint => exit_codes::CHECKPOINT_UNUSABLE,
                Fault::Invocation => exit_codes::BUILDER_INPUT,
                Fault::Io => exit_codes::BUILDER_INTERNAL,
            },
            Error::Build(e) => e.exit_code(),
            Error::Capture(_) => exit_codes::BUILDER_INTERNAL,
        }
    }

    /// What the person reading the message can do about it, when there is something.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Usage(_) => Some("see `checkpoint-builder --help`"),
            Error::Command { source, .. } => source.hint(),
            Error::Build(e) => e.hint(),
            Error::ExportOci(_) | Error::Capture(_) => None,
        }
    }
}

/// The lines [`report`] prints: `error: HEADLINE: CAUSE`, each further cause on its own line,
/// then the hint. Pure, so tests can check the format.
pub fn report_lines(err: &Error) -> Vec<String> {
    let mut lines = Vec::new();
    let mut source = std::error::Error::source(err);
    match (err, source) {
        // A transparent wrapper: its own message is already its inner error's.
        (Error::Build(inner), _) => {
            lines.push(format!("checkpoint-builder: error: {inner}"));
            source = std::error::Error::source(inner);
            if let Some(first) = source {
                lines[0] = format!("checkpoint-builder: error: {inner}: {first}");
                source = first.source();
            }
        }
        (_, Some(first)) => {
            lines.push(format!("checkpoint-builder: error: {err}: {first}"));
            source = first.source();
        }
        (_, None) => lines.push(format!("checkpoint-builder: error: {err}")),
    }
    while let Some(cause) = source {
        lines.push(format!("  caused by: {cause}"));
        source = cause.source();
    }
    if let Some(hint) = err.hint() {
        lines.push(format!("  hint: {hint}"));
    }
    lines
}

/// Prints the error on stderr and returns its exit code.
pub fn report(err: &Error) -> i32 {
    for line in report_lines(err) {
        eprintln!("{line}");
    }
    err.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_first_cause_shares_the_headline_line() {
        let err = Error::Command {
            command: "verify",
            source: CliError::Io {
                what: "cannot read",
                path: PathBuf::from("/x"),
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            },
        };
        let lines = report_lines(&err);
        assert_eq!(
            lines[0],
            "checkpoint-builder: error: verify failed: cannot read: /x"
        );
        assert!(
            lines[1].starts_with("  caused by: No such file"),
            "{lines:?}"
        );
        assert_eq!(err.exit_code(), exit_codes::BUILDER_INPUT);
    }

    #[test]
    fn usage_errors_are_bad_invocations_with_a_hint() {
        let err = Error::Usage("unknown option --frob".into());
        assert_eq!(
            report_lines(&err),
            [
                "checkpoint-builder: error: unknown option --frob",
                "  hint: see `checkpoint-builder --help`"
            ]
        );
        assert_eq!(err.exit_code(), exit_codes::BUILDER_INPUT);
    }
}
