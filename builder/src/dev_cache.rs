//! The development cache (design §7, issue 6): layers kept outside the store, in a directory
//! the user binds into the sandbox, so a build that failed resumes at the phase that failed.
//!
//! Layout: `CACHE/entries/<name>-<unix ns>-<pid>/` is one build's checkpoint, written layer by
//! layer as phases end (its `index.json` is replaced atomically after each layer, so a killed
//! build leaves an entry whose listed layers are complete). Every build writes only its own
//! entry; entries are read after the same checks as a `checkpointBase`, and an entry that
//! fails them is deleted with a message. `last-used` in an entry orders eviction.

use crate::reuse::base::{load_base_with, BaseCheckpoint};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// An opened cache directory.
pub struct DevCache {
    root: PathBuf,
}

/// What `cache ls` shows of an entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EntryInfo {
    pub path: PathBuf,
    pub name: String,
    pub layers: Vec<String>,
    pub bytes: u64,
    pub age_seconds: u64,
    /// The build finished (successfully) and closed the entry.
    pub complete: bool,
}

const ENTRIES: &str = "entries";
const LAST_USED: &str = "last-used";

impl DevCache {
    /// Opens `root`, which must be a writable directory.
    pub fn open(root: &Path) -> Result<Self, String> {
        let meta = std::fs::metadata(root).map_err(|e| {
            format!(
                "{}: {e} (is it bound into the sandbox with extra-sandbox-paths?)",
                root.display()
            )
        })?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", root.display()));
        }
        let entries = root.join(ENTRIES);
        std::fs::create_dir_all(&entries).map_err(|e| {
            format!(
                "cannot create {}: {e} (the build user must be able to write there)",
                entries.display()
            )
        })?;
        Ok(DevCache {
            root: root.to_path_buf(),
        })
    }

    /// A fresh entry directory for a build of `name` (not created: the checkpoint writer
    /// creates it).
    pub fn new_entry(&self, name: &str) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "+-._".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.root
            .join(ENTRIES)
            .join(format!("{safe}-{nanos}-{}", std::process::id()))
    }

    fn entry_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.root.join(ENTRIES))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        // Newest first: names end in creation time, but sort by the file system's view.
        dirs.sort_by_key(|p| std::cmp::Reverse(modified(p)));
        dirs
    }

    /// Checked entries for a build of `name` on `system`, newest first. Entries that fail the
    /// checks are deleted, each with a message on stderr.
    pub fn candidates(
        &self,
        name: &str,
        system: Option<&str>,
        exclude: &Path,
    ) -> Vec<BaseCheckpoint> {
        let mut out = Vec::new();
        for dir in self.entry_dirs() {
            if dir == exclude || entry_name(&dir).as_deref() != Some(name) {
                continue;
            }
            match load_base_with(&dir, system, true, crate::reuse::trust::BaseTrust::OwnCache) {
                Ok(base) if base.layers.len() > 1 => {
                    let _ = std::fs::write(dir.join(LAST_USED), b"");
                    out.push(base);
                }
                Ok(_) => {}
                Err(reason) => {
                    eprintln!(
                        "checkpoint-builder: dropping cache entry {}: {reason}",
                        dir.display()
                    );
                    remove_entry(&dir);
                }
            }
        }
        out
    }

    /// Every entry, newest first.
    pub fn list(&self) -> Vec<EntryInfo> {
        self.entry_dirs()
            .into_iter()
            .map(|dir| {
                let index: serde_json::Value = std::fs::read(dir.join("index.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(serde_json::Value::Null);
                EntryInfo {
                    name: index["meta"]["name"].as_str().unwrap_or("?").to_owned(),
                    layers: index["layers"]
                        .as_array()
                        .map(|l| {
                            l.iter()
                                .filter_map(|x| x["name"].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    bytes: dir_size(&dir),
                    age_seconds: modified(&dir)
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .map(|d| d.as_secs())
                        .unwrap_or(0),
                    complete: !dir.join("tmp").exists(),
                    path: dir,
                }
            })
            .collect()
    }

    /// Deletes least recently used entries until the cache holds at most `max_bytes`.
    /// Returns the deleted entries.
    pub fn gc(&self, max_bytes: u64) -> Vec<PathBuf> {
        let mut entries: Vec<(PathBuf, u64, Option<SystemTime>)> = self
            .entry_dirs()
            .into_iter()
            .map(|d| {
                let used = modified(&d.join(LAST_USED)).or_else(|| modified(&d));
                (d.clone(), dir_size(&d), used)
            })
            .collect();
        entries.sort_by_key(|(_, _, used)| *used);
        let mut total: u64 = entries.iter().map(|(_, b, _)| b).sum();
        let mut removed = Vec::new();
        for (dir, bytes, _) in entries {
            if total <= max_bytes {
                break;
            }
            remove_entry(&dir);
            total = total.saturating_sub(bytes);
            removed.push(dir);
        }
        removed
    }
}

fn entry_name(dir: &Path) -> Option<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).ok()?).ok()?;
    index["meta"]["name"].as_str().map(str::to_owned)
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::symlink_metadata(p).and_then(|m| m.modified()).ok()
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(e.path()),
                    Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                    Err(_) => {}
                }
            }
        }
    }
    total
}

/// Removes an entry: renamed away first (so no reader sees half of it), then deleted.
fn remove_entry(dir: &Path) {
    let doomed = dir.with_file_name(format!(
        ".removing-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let target = if std::fs::rename(dir, &doomed).is_ok() {
        doomed
    } else {
        dir.to_path_buf()
    };
    let _ = std::fs::remove_dir_all(&target);
}

/// Copies a finished cache entry (a checkpoint directory) to `to` (the `checkpoint` output).
pub fn copy_checkpoint(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        if name == "tmp" || name == LAST_USED {
            continue;
        }
        let target = to.join(&name);
        if e.file_type()?.is_dir() {
            copy_checkpoint(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}
