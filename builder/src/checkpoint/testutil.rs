//! Test helpers: self-removing temporary directories, and entries and root states built from
//! literal contents (tests only).

use super::manifest::{ContentHash, Entry, EntryKind, Timestamp};
use super::path::RelPath;
use super::state::RootState;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory entry: mode 755, mtime 0.
pub fn dir_entry() -> Entry {
    Entry {
        kind: EntryKind::Dir,
        mode: 0o755,
        mtime: Timestamp::default(),
        xattrs: Default::default(),
    }
}

/// A regular file entry with `content`'s size and hash: mode 644, mtime 0, no hardlink group.
pub fn file_entry(content: &[u8]) -> Entry {
    Entry {
        kind: EntryKind::File {
            size: content.len() as u64,
            blake3: ContentHash::of(content),
            hardlink: None,
        },
        mode: 0o644,
        mtime: Timestamp::default(),
        xattrs: Default::default(),
    }
}

/// A root state of the files `(path, content)`, with the root and every parent directory.
pub fn tree_of(files: &[(&str, &str)]) -> RootState {
    let mut t = RootState::new();
    t.insert(RelPath::root(), dir_entry());
    for (p, c) in files {
        let path = RelPath::new(p.as_bytes().to_vec()).unwrap();
        let mut d = path.parent();
        while let Some(x) = d {
            t.entry(x.clone()).or_insert_with(dir_entry);
            d = x.parent();
        }
        t.insert(path, file_entry(c.as_bytes()));
    }
    t
}

/// A directory under the crate's target dir (same filesystem as the repo, which supports
/// user xattrs), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/checkpoint-tests");
        std::fs::create_dir_all(&base).unwrap();
        let p = base.join(format!(
            "{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        TempDir(p.canonicalize().unwrap())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        crate::checkpoint::restore::remove_tree(&self.0).ok();
    }
}
