//! The `export-oci` command: opens the checkpoint, runs the export
//! and tells people what it wrote (stderr); the manifest digest is the data (stdout).

use super::blob::Compression;
use super::error::OciError;
use super::layout::{export, ExportOptions};
use crate::checkpoint::Checkpoint;
use std::path::PathBuf;

/// What `export-oci` was asked for (parsed by [`crate::cli::export_oci`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub checkpoint: PathBuf,
    pub dir: PathBuf,
    pub after: Option<String>,
    pub tag: String,
    pub compression: Compression,
}

/// Runs the export.
pub fn run(args: &Args) -> Result<(), OciError> {
    super::layout::check_tag(&args.tag)?;
    let path = &args.checkpoint;
    let ck = Checkpoint::open(path).map_err(|source| OciError::Checkpoint {
        path: path.clone(),
        source,
    })?;
    let upto = match &args.after {
        Some(phase) => {
            crate::cli::layer_index(&ck, path, phase).map_err(|_| OciError::NoSuchLayer {
                path: path.clone(),
                phase: phase.clone(),
                available: crate::cli::layer_names(&ck),
            })?
        }
        None => match ck.layers().len() {
            0 => {
                return Err(OciError::Meta {
                    path: path.clone(),
                    problem: "it has no layer".into(),
                })
            }
            n => n as u32 - 1,
        },
    };
    // The label names the checkpoint as an absolute path, however it was given.
    let label_path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
    let options = ExportOptions {
        upto,
        tag: args.tag.clone(),
        compression: args.compression,
    };
    let started = std::time::Instant::now();
    let report = export(&ck, &label_path, &args.dir, &options)?;
    for (phase, layer) in &report.layers {
        match layer {
            Some(l) => eprintln!(
                "  {phase:<24} {:>6} entries {:>12} bytes  {}",
                l.entries, l.blob.size, l.blob.digest
            ),
            None => eprintln!("  {phase:<24} no changes (history only)"),
        }
    }
    for s in &report.skipped_sockets {
        eprintln!("checkpoint-builder: left out socket /{s} (a tar cannot hold sockets)");
    }
    for v in &report.skipped_variables {
        eprintln!("checkpoint-builder: left `{v}` out of Env (its value is not UTF-8)");
    }
    let manifest = report.manifest.as_ref().expect("set on success");
    eprintln!(
        "checkpoint-builder: exported {} phases into {}:{} in {:.2}s ({} layers)",
        report.layers.len(),
        args.dir.display(),
        args.tag,
        started.elapsed().as_secs_f64(),
        report.layers.iter().filter(|(_, l)| l.is_some()).count()
    );
    crate::cli::print_data(&manifest.digest);
    Ok(())
}
