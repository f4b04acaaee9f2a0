//! Test helpers: self-removing temporary directories, and entries and root states built from
//! literal contents (tests only).

use super::manifest::{ContentHash, Entry, EntryKind, Timestamp};
use super::path::RelPath;
use super::state::RootState;
use std::path::{Path, PathBuf};

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
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/checkpoint-tests");
        std::fs::create_dir_all(&base).unwrap();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{tag}-"))
            .tempdir_in(&base)
            .unwrap()
            // Removed by our own Drop: restored trees can hold read-only directories.
            .keep();
        // As `create_dir` made it before (tempfile's are private, 0700).
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        TempDir(dir.canonicalize().unwrap())
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
