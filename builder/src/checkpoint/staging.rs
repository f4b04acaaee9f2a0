//! Staged contents: file contents an import has just read and verified, kept decompressed
//! (and rewritten) as files in a hidden directory of the restore's target, found by their hash,
//! so that the restore which follows links each into place instead of decompressing its blob
//! a second time (issue 19). Only this process writes there, between the import and the
//! restore; the directory is removed once the restore is done, before any snapshot.
//!
//! The files are spread over [`SHARDS`] subdirectories: the import's threads create them at
//! once, and a file system locks a directory while it creates a name in it (on an ext4
//! without a journal, where a create right after deletions searches long for a free inode,
//! one directory made openssl's import twice as long).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::chunk_buffer::read_in_chunks;
use super::error::{CheckpointError, IoResultExt, Result};
use super::fsops;
use super::manifest::{ContentHash, Timestamp};
use super::restore::{remove_at, SparseWriter};

/// The start of a staging directory's name.
pub const STAGING_PREFIX: &str = ".checkpoint-staging-";

/// How many subdirectories the staged files are spread over (named `0` to `7`).
pub const SHARDS: usize = 8;

/// A staging directory (see the module documentation).
#[derive(Debug)]
pub struct Staging {
    parent: PathBuf,
    parent_fd: OwnedFd,
    name: Vec<u8>,
    path: PathBuf,
    /// The subdirectories, in order.
    shards: Vec<OwnedFd>,
    /// Staged contents: hash → the file holding it.
    staged: Mutex<HashMap<ContentHash, Staged>>,
    counter: AtomicU64,
    removed: bool,
    /// The parent's mtime before and after the staging directory was made in it.
    parent_mtimes: (Timestamp, Timestamp),
}

/// A staged content's file: kept under the name it was written as (a rename to its hash
/// would be one more operation on a directory the staging threads share).
#[derive(Debug)]
struct Staged {
    /// The subdirectory it is in.
    shard: usize,
    name: Vec<u8>,
    /// Linked into a tree already.
    placed: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Staging {
    /// Creates a fresh 0700 staging directory in `parent` (a trusted path, the target of the
    /// restores to come, so that staged files can be linked into place).
    pub fn create(parent: &Path) -> Result<Staging> {
        static N: AtomicU64 = AtomicU64::new(0);
        let parent_fd = fsops::open_dir(parent).at("open dir", parent)?;
        let before = mtime_of(parent_fd.as_fd(), parent)?;
        loop {
            let name = format!(
                "{STAGING_PREFIX}{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            )
            .into_bytes();
            let path = parent.join(std::ffi::OsStr::from_bytes(&name));
            match fsops::mkdir_at(parent_fd.as_fd(), &name, 0o700) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(CheckpointError::io("mkdir", path, e)),
            }
            let after = mtime_of(parent_fd.as_fd(), parent)?;
            // Made before anything can fail, so that dropping it removes the directory.
            let mut staging = Staging {
                parent: parent.to_owned(),
                parent_fd,
                name,
                path,
                shards: Vec::with_capacity(SHARDS),
                staged: Mutex::new(HashMap::new()),
                counter: AtomicU64::new(0),
                removed: false,
                parent_mtimes: (before, after),
            };
            let fd = fsops::open_dir_at(staging.parent_fd.as_fd(), &staging.name)
                .at("open dir", &staging.path)?;
            for shard in 0..SHARDS {
                let sub = shard.to_string().into_bytes();
                let sub_path = staging.path.join(shard.to_string());
                fsops::mkdir_at(fd.as_fd(), &sub, 0o700).at("mkdir", &sub_path)?;
                let sub_fd = fsops::open_dir_at(fd.as_fd(), &sub).at("open dir", &sub_path)?;
                staging.shards.push(sub_fd);
            }
            return Ok(staging);
        }
    }

    /// The subdirectory `shard`.
    fn dir(&self, shard: usize) -> BorrowedFd<'_> {
        self.shards[shard].as_fd()
    }

    /// The path of `name` in the subdirectory `shard` (for messages).
    fn path_of(&self, shard: usize, name: &[u8]) -> PathBuf {
        self.path
            .join(shard.to_string())
            .join(std::ffi::OsStr::from_bytes(name))
    }

    /// The directory's name inside its parent.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// True when the staging directory is directly inside `dir`.
    pub fn is_in(&self, dir: &Path) -> bool {
        let (Ok(have), Ok(other)) = (
            fsops::fstat(self.parent_fd.as_fd()),
            std::fs::symlink_metadata(dir),
        ) else {
            return false;
        };
        have.st_dev == other.dev() && have.st_ino == other.ino()
    }

    /// How many contents are staged.
    pub fn len(&self) -> usize {
        lock(&self.staged).len()
    }

    /// True when nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new file to stage a content in, published under its hash once written.
    pub(super) fn begin(&self) -> Result<StagedFile<'_>> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let shard = (n % SHARDS as u64) as usize;
        let name = format!("tmp-{n}").into_bytes();
        let path = self.path_of(shard, &name);
        let file = fsops::create_file_at(self.dir(shard), &name, 0o600).at("create", &path)?;
        Ok(StagedFile {
            staging: self,
            shard,
            name,
            path,
            file: Some(file),
        })
    }

    /// Puts the staged content `hash`, if there is one, at `dir/name` (which must not exist):
    /// its first use is the staged file itself, linked; a second use, or a tree on another
    /// filesystem, gets a copy. Returns the new file, open for metadata updates, or `None`
    /// when the content is not staged (or the staged file cannot be read back): the caller
    /// writes it from its blob.
    pub(super) fn place(
        &self,
        hash: &ContentHash,
        dir: BorrowedFd<'_>,
        name: &[u8],
    ) -> io::Result<Option<File>> {
        let (shard, staged, first) = match lock(&self.staged).get_mut(hash) {
            None => return Ok(None),
            Some(s) => (
                s.shard,
                s.name.clone(),
                !std::mem::replace(&mut s.placed, true),
            ),
        };
        if first {
            match fsops::link_at(self.dir(shard), &staged, dir, name) {
                Ok(()) => return fsops::open_nofollow_at(dir, name).map(Some),
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
                Err(e) => return Err(e),
            }
        }
        // The first use may have made the file unreadable (its recorded mode): then the blob.
        let Ok(mut from) = fsops::open_nofollow_at(self.dir(shard), &staged) else {
            return Ok(None);
        };
        let mut to = fsops::create_file_at(dir, name, 0o600)?;
        io::copy(&mut from, &mut to)?;
        Ok(Some(to))
    }

    /// The staged content `hash`, opened for reading (it was verified when staged, and only
    /// this process writes the directory): `None` when it is not staged or cannot be opened
    /// (a restore linked it into a tree and gave it an unreadable mode), for the caller to
    /// read its blob instead. Reading a staged file costs a copy from the page cache, where
    /// the blob would be decompressed and hashed again.
    pub fn open(&self, hash: &ContentHash) -> Option<File> {
        self.open_named(hash).map(|(f, _)| f)
    }

    /// [`Self::open`], with the staged file's path.
    fn open_named(&self, hash: &ContentHash) -> Option<(File, PathBuf)> {
        let (shard, name) = {
            let staged = lock(&self.staged);
            let s = staged.get(hash)?;
            (s.shard, s.name.clone())
        };
        let f = fsops::open_nofollow_at(self.dir(shard), &name).ok()?;
        Some((f, self.path_of(shard, &name)))
    }

    /// Passes the staged content `hash` to `sink` in chunks; `None` when [`Self::open`]
    /// finds none (the caller streams its blob), else whether reading it back failed (after
    /// `sink` may have had part of it).
    pub fn stream(
        &self,
        hash: &ContentHash,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Option<Result<()>> {
        let (mut f, path) = self.open_named(hash)?;
        Some(read_in_chunks(&mut f, &path, sink).map(drop))
    }

    /// Removes the directory and everything staged in it (files linked into a tree stay
    /// there). The parent keeps the mtime a restore gave it since, or else the one it had
    /// before the staging directory was made.
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        let parent = self.parent_fd.as_fd();
        let now = mtime_of(parent, &self.parent)?;
        remove_at(parent, &self.name, &self.path)?;
        let (before, after) = self.parent_mtimes;
        let keep = if now == after { before } else { now };
        fsops::set_mtime_fd(parent, keep).at("set mtime of", &self.parent)
    }

    /// The directory the staging directory is in.
    pub fn parent(&self) -> &Path {
        &self.parent
    }
}

fn mtime_of(fd: BorrowedFd<'_>, path: &Path) -> Result<Timestamp> {
    let st = fsops::fstat(fd).at("stat", path)?;
    Ok(Timestamp {
        sec: st.st_mtime,
        nsec: st.st_mtime_nsec as u32,
    })
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.removed {
            let _ = remove_at(self.parent_fd.as_fd(), &self.name, &self.path);
        }
    }
}

/// A content being staged; removed unless [`StagedFile::publish`]ed.
pub(super) struct StagedFile<'a> {
    staging: &'a Staging,
    shard: usize,
    name: Vec<u8>,
    path: PathBuf,
    file: Option<File>,
}

impl StagedFile<'_> {
    /// Writes the content chunk by chunk, through `fill`; returns its length.
    pub(super) fn fill(
        &mut self,
        fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
    ) -> Result<u64> {
        let file = self.file.as_mut().expect("open until published");
        let mut w = SparseWriter::new(file, &self.path);
        fill(&mut |c| w.write(c))?;
        w.finish()
    }

    /// Passes what was written to `sink` in chunks (to store it).
    pub(super) fn read_back(&self, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let mut f = fsops::open_nofollow_at(self.staging.dir(self.shard), &self.name)
            .at("open", &self.path)?;
        read_in_chunks(&mut f, &self.path, sink).map(drop)
    }

    /// Makes the content available to restores as `hash` (what it hashes to).
    pub(super) fn publish(mut self, hash: &ContentHash) -> Result<()> {
        self.file = None;
        let mut staged = lock(&self.staging.staged);
        if staged.contains_key(hash) {
            // Two contents rewritten to the same bytes: one copy is enough (dropped, this
            // one is removed).
            return Ok(());
        }
        let name = std::mem::take(&mut self.name);
        staged.insert(
            *hash,
            Staged {
                shard: self.shard,
                name,
                placed: false,
            },
        );
        Ok(())
    }
}

impl Drop for StagedFile<'_> {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            let _ = fsops::unlink_at(self.staging.dir(self.shard), &self.name, false);
        }
    }
}
