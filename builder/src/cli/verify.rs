//! `verify CHECKPOINT [--json]`: every hash, invariant and shell state rechecked.

use super::common::{check_shell_states, open, print_data};
use super::CliError;
use std::path::{Path, PathBuf};

/// Recheck every hash, the manifest's invariants and every layer's shell state.
///
/// Exits 0 when the checkpoint is valid, 65 when it is unusable.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The checkpoint directory
    pub checkpoint: PathBuf,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args) -> Result<i32, CliError> {
    verify(&args.checkpoint, args.json).map(|()| 0)
}

/// `verify`: every hash and invariant.
pub fn verify(path: &Path, json: bool) -> Result<(), CliError> {
    let ck = open(path)?;
    let report = ck.verify().map_err(|source| CliError::Checkpoint {
        path: path.to_path_buf(),
        source,
    })?;
    check_shell_states(&ck, path)?;
    if json {
        print_data(
            &serde_json::json!({
                "ok": true,
                "layers": report.layers,
                "blobs_verified": report.blobs_verified,
                "bytes_verified": report.bytes_verified,
                "unreferenced_blobs": report.unreferenced_blobs,
            })
            .to_string(),
        );
    } else {
        eprintln!(
            "checkpoint {} is valid: {} layers, {} blobs ({} bytes) rehashed, {} unreferenced blobs",
            path.display(),
            report.layers,
            report.blobs_verified,
            report.bytes_verified,
            report.unreferenced_blobs
        );
    }
    Ok(())
}
