//! The `export-oci` command: parses its arguments, opens the checkpoint, runs the export
//! and tells people what it wrote (stderr); the manifest digest is the data (stdout).

use super::blob::Compression;
use super::error::OciError;
use super::layout::{export, ExportOptions};
use crate::checkpoint::Checkpoint;
use std::path::PathBuf;

/// `export-oci CHECKPOINT DIR [--after PHASE] [--tag NAME] [--compression gzip|zstd]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub checkpoint: PathBuf,
    pub dir: PathBuf,
    pub after: Option<String>,
    pub tag: String,
    pub compression: Compression,
}

pub const USAGE: &str =
    "usage: export-oci CHECKPOINT DIR [--after PHASE] [--tag NAME] [--compression gzip|zstd]";

/// Parses the arguments after `export-oci`; `Err` is a message for a usage error.
pub fn parse(args: &[String]) -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut after = None;
    let mut tag = "latest".to_owned();
    let mut compression = Compression::Gzip;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--after" => after = Some(value("--after")?),
            "--tag" => tag = value("--tag")?,
            "--compression" => {
                let v = value("--compression")?;
                compression = Compression::parse(&v)
                    .ok_or_else(|| format!("--compression {v:?}: expected gzip or zstd"))?;
            }
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            other => positional.push(PathBuf::from(other)),
        }
    }
    let [checkpoint, dir] = <[PathBuf; 2]>::try_from(positional)
        .map_err(|_| "expects a CHECKPOINT and a DIR".to_owned())?;
    Ok(Args {
        checkpoint,
        dir,
        after,
        tag,
        compression,
    })
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
    print_data(&manifest.digest);
    Ok(())
}

fn print_data(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|_| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        let a = parse(&args(&["ck", "dir"])).unwrap();
        assert_eq!(
            (a.after, a.tag.as_str(), a.compression),
            (None, "latest", Compression::Gzip)
        );
        let a = parse(&args(&[
            "--after",
            "buildPhase",
            "ck",
            "--tag",
            "b",
            "dir",
            "--compression",
            "zstd",
        ]))
        .unwrap();
        assert_eq!(a.after.as_deref(), Some("buildPhase"));
        assert_eq!((a.tag.as_str(), a.compression), ("b", Compression::Zstd));
        assert_eq!(a.dir, PathBuf::from("dir"));
        for bad in [
            &["ck"][..],
            &["ck", "dir", "extra"],
            &["ck", "dir", "--after"],
            &["ck", "dir", "--compression", "xz"],
            &["ck", "dir", "--json"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
