//! `export-oci CHECKPOINT DIR [--after PHASE] [--tag NAME] [--compression gzip|zstd]`: its
//! arguments, the layer to export up to, the report on stderr and the manifest digest on
//! stdout; the export itself is [`crate::oci::export`].

use super::common::{layer_index, layer_names, print_data};
use crate::checkpoint::Checkpoint;
use crate::oci::{check_tag, export, Compression, ExportOptions, OciError};
use std::path::PathBuf;

/// Write the checkpoint as an OCI image layout into DIR.
///
/// One layer per phase up to PHASE (default: all), as the phases ran; DIR must be absent or
/// empty. The manifest digest is printed on stdout.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The checkpoint directory
    pub checkpoint: PathBuf,
    /// The image layout directory to write (absent or empty)
    pub dir: PathBuf,
    /// The last phase to export (default: all of them)
    #[arg(long, value_name = "PHASE")]
    pub after: Option<String>,
    /// The image's tag in the layout
    #[arg(long, value_name = "NAME", default_value = "latest")]
    pub tag: String,
    /// How the layers are compressed
    #[arg(long, value_name = "gzip|zstd", default_value = "gzip", value_parser = compression)]
    pub compression: Compression,
}

fn compression(text: &str) -> Result<Compression, String> {
    Compression::parse(text).ok_or_else(|| format!("{text:?}: expected gzip or zstd"))
}

/// Opens the checkpoint, runs the export and tells people what it wrote (stderr); the
/// manifest digest is the data (stdout).
pub fn run(args: &Args) -> Result<(), OciError> {
    check_tag(&args.tag)?;
    let path = &args.checkpoint;
    let ck = Checkpoint::open(path).map_err(|source| OciError::Checkpoint {
        path: path.clone(),
        source,
    })?;
    let upto = match &args.after {
        Some(phase) => layer_index(&ck, path, phase).map_err(|_| OciError::NoSuchLayer {
            path: path.clone(),
            phase: phase.clone(),
            available: layer_names(&ck),
        })?,
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
    print_data(&manifest.digest);
    Ok(())
}
