//! `inspect CHECKPOINT [--json]`: one row per layer (phase, duration, sizes, key).

use super::common::{open, print_data};
use super::CliError;
use std::path::{Path, PathBuf};

/// List a checkpoint's layers: phases, durations, sizes, keys.
///
/// A table on stderr, or with --json a document on stdout.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The checkpoint directory (a build's `checkpoint` output)
    pub checkpoint: PathBuf,
    /// Print the layers as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args) -> Result<i32, CliError> {
    inspect(&args.checkpoint, args.json).map(|()| 0)
}

/// `inspect`: one row per layer.
pub fn inspect(path: &Path, json: bool) -> Result<(), CliError> {
    let ck = open(path)?;
    let rows: Vec<serde_json::Value> = ck
        .layers()
        .iter()
        .zip(ck.index().layers.iter())
        .map(|(layer, r)| {
            let changed: usize = layer.roots.values().map(|d| d.changed.len()).sum();
            let deleted: usize = layer.roots.values().map(|d| d.deleted.len()).sum();
            // `inspect` shows any checkpoint: metadata that is not a build's shows as null.
            let info = crate::meta::LayerInfo::of(layer).unwrap_or_default();
            serde_json::json!({
                "index": layer.index,
                "phase": layer.meta.name,
                "seconds": info.seconds,
                "key": info.key,
                "changed_entries": changed,
                "deleted_entries": deleted,
                "blobs_added": r.blobs_added,
                "blob_bytes_added": r.blob_bytes_added,
            })
        })
        .collect();
    if json {
        let doc = serde_json::json!({ "meta": ck.meta(), "roots": ck.roots(), "layers": rows });
        print_data(&serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(());
    }
    eprintln!("checkpoint {}", path.display());
    eprintln!("  {}", serde_json::to_string(ck.meta()).unwrap_or_default());
    eprintln!(
        "  {:>3}  {:<24} {:>9} {:>8} {:>8} {:>12}  key",
        "#", "phase", "seconds", "changed", "deleted", "new bytes"
    );
    for row in &rows {
        let key = row["key"].as_str().unwrap_or("-");
        eprintln!(
            "  {:>3}  {:<24} {:>9} {:>8} {:>8} {:>12}  {}",
            row["index"],
            row["phase"].as_str().unwrap_or(""),
            row["seconds"]
                .as_f64()
                .map(|s| format!("{s:.3}"))
                .unwrap_or_else(|| "-".into()),
            row["changed_entries"].to_string(),
            row["deleted_entries"].to_string(),
            row["blob_bytes_added"].to_string(),
            &key[..key.len().min(16)]
        );
    }
    Ok(())
}
