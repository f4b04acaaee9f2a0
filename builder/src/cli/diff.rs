//! `diff A B [--json]`: why the layers of two checkpoints differ, layer by layer.

use super::common::{open, print_data};
use super::CliError;
use crate::checkpoint::Checkpoint;
use std::path::{Path, PathBuf};

/// Explain why two checkpoints' layers differ, layer by layer.
///
/// In the words a build uses to explain a reuse miss; a checkpoint that is not trusted is
/// named on stderr.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The first checkpoint
    pub a: PathBuf,
    /// The second checkpoint
    pub b: PathBuf,
    /// Print one row per layer as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args) -> Result<i32, CliError> {
    diff(&args.a, &args.b, args.json).map(|()| 0)
}

/// `diff A B`: why the layers of two checkpoints differ, layer by layer, in the words a
/// build uses to explain a miss.
pub fn diff(a: &Path, b: &Path, json: bool) -> Result<(), CliError> {
    let ca = open(a)?;
    let cb = open(b)?;
    // Decoding reads every layer's shell state through `read_shell_state`, which validates
    // it: an unsafe state makes the checkpoint unusable here as in `verify` and `restore`.
    let decode = |ck: &Checkpoint, path: &Path| {
        crate::reuse::base::decode_layers(ck).map_err(|reason| CliError::Undecodable {
            path: path.to_path_buf(),
            reason,
        })
    };
    let (la, lb) = (decode(&ca, a)?, decode(&cb, b)?);
    // A key only vouches for a layer's content in a checkpoint whose keys, chain and
    // provenance check (docs/trust.md): a forged copy keeps the real keys.
    let untrusted: Vec<String> = [(&ca, &la, "the first"), (&cb, &lb, "the second")]
        .into_iter()
        .filter_map(|(ck, layers, which)| {
            crate::reuse::base::trust_problem(ck, layers)
                .map(|why| format!("{which} ({}) is not trusted: {why}", ck.dir().display()))
        })
        .collect();
    for u in &untrusted {
        eprintln!("checkpoint-builder diff: {u}");
    }
    let mut rows = Vec::new();
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i), lb.get(i));
        let key = |ck: &Checkpoint| {
            ck.layers()
                .get(i)
                .and_then(|l| crate::meta::LayerInfo::of(l).ok()?.key)
        };
        let verdict = match (x, y) {
            (Some(x), Some(y)) if x.name != y.name => {
                format!("different phases: `{}` vs `{}`", x.name, y.name)
            }
            (Some(x), Some(y)) if x.inputs == y.inputs => {
                if key(&ca) == key(&cb) && untrusted.is_empty() {
                    "same key".to_owned()
                } else if key(&ca) == key(&cb) {
                    let same_content = ca.index().layers.get(i).map(|r| r.blake3)
                        == cb.index().layers.get(i).map(|r| r.blake3);
                    format!(
                        "same key recorded, {} content, but {}",
                        if same_content { "same" } else { "different" },
                        untrusted.join("; ")
                    )
                } else {
                    "same inputs, an earlier layer differs".to_owned()
                }
            }
            (Some(x), Some(y)) => crate::reuse::plan::explain_difference(&x.inputs, &y.inputs),
            (Some(_), None) => "only in the first".to_owned(),
            (None, Some(_)) => "only in the second".to_owned(),
            (None, None) => unreachable!(),
        };
        let phase = x.or(y).map(|l| l.name.clone()).unwrap_or_default();
        rows.push(serde_json::json!({ "index": i, "phase": phase, "verdict": verdict }));
    }
    if json {
        print_data(&serde_json::to_string_pretty(&rows).expect("json"));
    } else {
        for r in &rows {
            eprintln!(
                "{:>3}  {:<24} {}",
                r["index"],
                r["phase"].as_str().unwrap_or(""),
                r["verdict"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}
