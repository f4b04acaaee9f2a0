//! `cache ls DIR [--json]`, `cache gc DIR --max-size SIZE`: the development cache.

use super::common::print_data;
use super::CliError;
use std::path::{Path, PathBuf};

/// List or trim a development cache.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// List what a development cache keeps: entries, sizes, ages, phases
    Ls {
        /// The development cache directory
        dir: PathBuf,
        /// Print the entries as JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Evict the least recently used entries until the cache fits in SIZE
    Gc {
        /// The development cache directory
        dir: PathBuf,
        /// The size to keep under: bytes, or with a K, M, G or T suffix (powers of 1024)
        #[arg(long, value_name = "SIZE", value_parser = size_arg)]
        max_size: u64,
    },
}

pub fn run(args: &Args) -> Result<i32, CliError> {
    match &args.command {
        CacheCommand::Ls { dir, json } => cache_ls(dir, *json),
        CacheCommand::Gc { dir, max_size } => cache_gc(dir, *max_size),
    }
    .map(|()| 0)
}

fn size_arg(text: &str) -> Result<u64, String> {
    parse_size(text).ok_or_else(|| format!("{text:?} is not a size (e.g. 10G, 500M, 1024)"))
}

/// `cache ls`: what the development cache keeps.
pub fn cache_ls(dir: &Path, json: bool) -> Result<(), CliError> {
    let cache = crate::dev_cache::DevCache::open(dir).map_err(|reason| CliError::Cache {
        path: dir.to_path_buf(),
        reason,
    })?;
    let entries = cache.list();
    if json {
        print_data(&serde_json::to_string_pretty(&entries).expect("json"));
        return Ok(());
    }
    eprintln!(
        "{:<28} {:>10} {:>8}  {:<9} phases",
        "name", "bytes", "age", "state"
    );
    for e in &entries {
        let last = e.layers.last().map(String::as_str).unwrap_or("-");
        let state = if last.starts_with("failed:") {
            "failed"
        } else if e.complete {
            "complete"
        } else {
            "partial"
        };
        eprintln!(
            "{:<28} {:>10} {:>7}s  {:<9} {}\n  {}",
            e.name,
            e.bytes,
            e.age_seconds,
            state,
            e.layers.join(" "),
            e.path.display()
        );
    }
    Ok(())
}

/// `cache gc --max-size`: least recently used entries go first.
pub fn cache_gc(dir: &Path, max_bytes: u64) -> Result<(), CliError> {
    let cache = crate::dev_cache::DevCache::open(dir).map_err(|reason| CliError::Cache {
        path: dir.to_path_buf(),
        reason,
    })?;
    let removed = cache.gc(max_bytes);
    eprintln!(
        "removed {} entr{}",
        removed.len(),
        if removed.len() == 1 { "y" } else { "ies" }
    );
    for r in removed {
        eprintln!("  {}", r.display());
    }
    Ok(())
}

/// The newest cache entry for `name` (a derivation name, or an entry directory's name).
pub fn cache_entry(dir: &Path, name: &str) -> Result<PathBuf, CliError> {
    let cache = crate::dev_cache::DevCache::open(dir).map_err(|reason| CliError::Cache {
        path: dir.to_path_buf(),
        reason,
    })?;
    cache
        .list()
        .into_iter()
        .find(|e| {
            e.name == name
                || e.path
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(name))
        })
        .map(|e| e.path)
        .ok_or_else(|| CliError::Cache {
            path: dir.to_path_buf(),
            reason: format!("no cache entry for `{name}`"),
        })
}

/// Parses `123`, `10K`, `500M`, `2G` (powers of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 1u64 << 10),
        'M' | 'm' => (&t[..t.len() - 1], 1 << 20),
        'G' | 'g' => (&t[..t.len() - 1], 1 << 30),
        'T' | 't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}
