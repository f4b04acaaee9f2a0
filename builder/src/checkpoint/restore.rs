//! Restore: materialises a root's state into a directory (into a temporary sibling, renamed
//! into place only when complete), or applies one layer's diff to a tree in place. Every
//! filesystem call is relative to a directory descriptor opened with `O_NOFOLLOW`, so no
//! symlink is ever followed and nothing is written outside the target.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use xattr::FileExt;

use super::blobs::{BlobStore, Expect};
use super::error::{CheckpointError, IoResultExt, Result};
use super::fsops;
use super::limits::PATH_MAX;
use super::manifest::{ContentHash, Entry, EntryKind, RootDiff, Timestamp, Xattrs};
use super::path::RelPath;
use super::staging::Staging;
use super::state::{check_root_state, RootState};

/// Blocks of zeros this long (or the tail of a chunk) are written as holes.
const HOLE_BLOCK: usize = 4096;

/// What a restore did.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct RestoreReport {
    /// False when the root does not exist in the restored state (the target was left
    /// absent).
    pub root_present: bool,
    /// Entries created or updated.
    pub entries: usize,
    /// Regular files written from blobs.
    pub files_written: usize,
    /// Content bytes written (holes included).
    pub bytes_written: u64,
    /// Entries already as wanted in a live tree, left alone (an in-place restore).
    pub kept: usize,
    /// Entries that cannot be recreated (sockets, devices), with their kind.
    pub skipped: Vec<(RelPath, &'static str)>,
    /// Entries whose setuid or setgid bits were recorded but not restored (see
    /// [`RestoreOptions::keep_setid`]).
    pub setid_cleared: Vec<RelPath>,
}

/// How a restore treats what a checkpoint may record but a restore should not recreate
/// without being asked.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct RestoreOptions {
    /// Restore setuid and setgid bits as recorded. Off by default: a checkpoint is untrusted
    /// input, and restoring as root would otherwise create setuid-root files from it. Builds
    /// never need them (the Nix store refuses them in outputs).
    pub keep_setid: bool,
}

const SETID: u32 = 0o6000;

/// Where a restore takes file contents from: the blobs, each verified while it is written,
/// or, for the contents an import has just read and verified, their staged copies (see
/// [`Staging`]), linked into place instead of being decompressed a second time.
#[derive(Clone, Copy)]
pub(super) struct Contents<'a> {
    pub blobs: &'a BlobStore,
    pub staged: Option<&'a Staging>,
}

impl<'a> Contents<'a> {
    pub fn of(blobs: &'a BlobStore) -> Self {
        Contents {
            blobs,
            staged: None,
        }
    }
}

/// `state` with setuid and setgid bits removed unless `opts` keeps them, and the paths
/// that had them (every member of a hardlink group alike, so the group stays consistent).
fn apply_options(state: &RootState, opts: RestoreOptions) -> (Cow<'_, RootState>, Vec<RelPath>) {
    if opts.keep_setid {
        return (Cow::Borrowed(state), Vec::new());
    }
    let cleared: Vec<RelPath> = state
        .iter()
        .filter(|(_, e)| e.mode & SETID != 0 && !e.kind.is_unsupported_for_restore())
        .map(|(p, _)| p.clone())
        .collect();
    if cleared.is_empty() {
        return (Cow::Borrowed(state), cleared);
    }
    let mut owned = state.clone();
    for p in &cleared {
        if let Some(e) = owned.get_mut(p) {
            e.mode &= !SETID;
        }
    }
    (Cow::Owned(owned), cleared)
}

/// Refuses to restore `state` at `target` when target + `/` + its longest path would not
/// fit in `PATH_MAX`: the builder's next snapshot, and Nix deleting the build directory,
/// reach files by path. Checked before anything is written.
pub fn check_path_room(target: &Path, state: &RootState) -> Result<()> {
    let Some(longest) = state.keys().max_by_key(|p| p.as_bytes().len()) else {
        return Ok(());
    };
    let base = if target.is_absolute() {
        target.as_os_str().len()
    } else {
        std::env::current_dir()
            .map_err(|e| CheckpointError::io("get the current directory for", target, e))?
            .join(target)
            .as_os_str()
            .len()
    };
    let length = if longest.is_root() {
        base
    } else {
        base + 1 + longest.as_bytes().len()
    };
    if length >= PATH_MAX {
        return Err(CheckpointError::PathTooLong {
            target: target.to_owned(),
            path: longest.escaped(),
            length,
            limit: PATH_MAX,
        });
    }
    Ok(())
}

impl RestoreReport {
    /// Adds the counts and skipped entries of a part of the same restore (or of another
    /// restore, for a total).
    pub fn absorb(&mut self, part: RestoreReport) {
        self.root_present |= part.root_present;
        self.entries += part.entries;
        self.kept += part.kept;
        self.files_written += part.files_written;
        self.bytes_written += part.bytes_written;
        self.skipped.extend(part.skipped);
        self.setid_cleared.extend(part.setid_cleared);
    }
}

/// Walks directories below a tree root through `O_NOFOLLOW` descriptors, keeping the
/// descriptors of the current directory's ancestors open.
pub(super) struct Cursor<'a> {
    root: BorrowedFd<'a>,
    target: &'a Path,
    stack: Vec<(RelPath, OwnedFd)>,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(root: BorrowedFd<'a>, target: &'a Path) -> Self {
        Cursor {
            root,
            target,
            stack: Vec::new(),
        }
    }

    /// A descriptor of directory `dir` (relative to the root); fails if any component is
    /// not a real directory.
    pub(super) fn dir(&mut self, dir: &RelPath) -> Result<BorrowedFd<'_>> {
        while let Some((p, _)) = self.stack.last() {
            if dir.starts_with(p) {
                break;
            }
            self.stack.pop();
        }
        let comps: Vec<&[u8]> = dir.components().collect();
        for i in self.stack.len()..comps.len() {
            let parent = self.stack.last().map_or(self.root, |(_, fd)| fd.as_fd());
            let path = RelPath::new(comps[..=i].join(&b'/'))?;
            let fd = fsops::open_dir_at(parent, comps[i]).map_err(|e| {
                if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) {
                    CheckpointError::UnsafeRestore {
                        target: self.target.to_owned(),
                        path: path.escaped(),
                        problem: "is not a real directory (symlink or file in the way)".into(),
                    }
                } else {
                    CheckpointError::io("open dir", self.target.join(path.as_path()), e)
                }
            })?;
            self.stack.push((path, fd));
        }
        Ok(self.stack.last().map_or(self.root, |(_, fd)| fd.as_fd()))
    }
}

pub(super) fn full(target: &Path, p: &RelPath) -> PathBuf {
    target.join(p.as_path())
}

pub(super) fn name_of(p: &RelPath) -> &[u8] {
    p.file_name().unwrap_or_default()
}

pub(super) fn state_error(target: &Path, (path, problem): (RelPath, String)) -> CheckpointError {
    CheckpointError::UnsafeRestore {
        target: target.to_owned(),
        path: path.escaped(),
        problem,
    }
}

/// Writes blob `hash` into `file`, leaving holes for blocks of zeros; the blob is verified
/// (the caller discards the file on error) and must be `size` bytes long.
fn write_content(
    blobs: &BlobStore,
    file: &mut File,
    hash: &ContentHash,
    size: u64,
    path: &Path,
) -> Result<u64> {
    let mut w = SparseWriter::new(file, path);
    let len = blobs.stream(hash, Expect::Exactly(size), |chunk| w.write(chunk))?;
    debug_assert_eq!(len, size, "stream checks the claimed size");
    w.finish()?;
    Ok(len)
}

/// Writes content chunk by chunk into a new file, leaving holes for blocks of zeros.
pub(super) struct SparseWriter<'a> {
    file: &'a mut File,
    path: &'a Path,
    /// Logical position (bytes of content so far).
    pos: u64,
    /// The file offset.
    cursor: u64,
}

impl<'a> SparseWriter<'a> {
    pub(super) fn new(file: &'a mut File, path: &'a Path) -> Self {
        SparseWriter {
            file,
            path,
            pos: 0,
            cursor: 0,
        }
    }

    /// Appends `chunk` to the content.
    pub(super) fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let mut run_start: Option<usize> = None;
        let mut off = 0;
        while off < chunk.len() {
            let end = (off + HOLE_BLOCK).min(chunk.len());
            let zero = chunk[off..end].iter().all(|&b| b == 0);
            match (zero, run_start) {
                (false, None) => run_start = Some(off),
                (true, Some(s)) => {
                    self.flush(&chunk[s..off], s)?;
                    run_start = None;
                }
                _ => {}
            }
            off = end;
        }
        if let Some(s) = run_start {
            self.flush(&chunk[s..], s)?;
        }
        self.pos += chunk.len() as u64;
        Ok(())
    }

    fn flush(&mut self, bytes: &[u8], start: usize) -> Result<()> {
        let at = self.pos + start as u64;
        if self.cursor != at {
            self.file.seek(SeekFrom::Start(at)).at("seek", self.path)?;
        }
        self.file.write_all(bytes).at("write", self.path)?;
        self.cursor = at + bytes.len() as u64;
        Ok(())
    }

    /// Extends the file over a trailing hole; returns the content length.
    pub(super) fn finish(self) -> Result<u64> {
        if self.cursor != self.pos {
            self.file.set_len(self.pos).at("truncate", self.path)?;
        }
        Ok(self.pos)
    }
}

/// Replaces the `user.*` xattrs of an open file or directory by `want`.
pub(super) fn sync_xattrs(f: &File, want: &Xattrs, path: &Path, fresh: bool) -> Result<()> {
    use std::ffi::OsStr;
    if !fresh {
        let have = match f.list_xattr() {
            Ok(l) => l.collect::<Vec<_>>(),
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => Vec::new(),
            Err(e) => return Err(CheckpointError::io("list xattrs of", path, e)),
        };
        for name in have {
            let b = name.as_bytes();
            if b.starts_with(b"user.") && !want.contains_key(b) {
                f.remove_xattr(&name).at("remove xattr of", path)?;
            }
        }
    }
    for (k, v) in want {
        f.set_xattr(OsStr::from_bytes(k), v)
            .at("set xattr on", path)?;
    }
    Ok(())
}

/// Creates one non-directory entry (or a directory with a temporary 0700 mode) at
/// `pfd/name`. Returns the content bytes written when a file was written from a blob.
#[allow(clippy::too_many_arguments)]
fn create_entry(
    src: Contents<'_>,
    pfd: BorrowedFd<'_>,
    link_cur: &mut Cursor<'_>,
    path: &RelPath,
    e: &Entry,
    target: &Path,
    report: &mut RestoreReport,
) -> Result<()> {
    let name = name_of(path);
    let fp = full(target, path);
    match &e.kind {
        EntryKind::Dir => {
            fsops::mkdir_at(pfd, name, 0o700).at("mkdir", &fp)?;
            if !e.xattrs.is_empty() {
                let d = File::from(fsops::open_dir_at(pfd, name).at("open dir", &fp)?);
                sync_xattrs(&d, &e.xattrs, &fp, true)?;
            }
        }
        EntryKind::File {
            hardlink: Some(g), ..
        } if g != path => {
            let gname = name_of(g).to_vec();
            let gparent = g.parent().unwrap_or_default();
            let gfd = link_cur.dir(&gparent)?;
            fsops::link_at(gfd, &gname, pfd, name).at("hardlink", &fp)?;
        }
        EntryKind::File { size, blake3, .. } => {
            let staged = match src.staged {
                Some(s) => s.place(blake3, pfd, name).at("place", &fp)?,
                None => None,
            };
            let (f, n) = match staged {
                Some(f) => (f, *size),
                None => {
                    let mut f = fsops::create_file_at(pfd, name, 0o600).at("create", &fp)?;
                    let n = write_content(src.blobs, &mut f, blake3, *size, &fp)?;
                    (f, n)
                }
            };
            sync_xattrs(&f, &e.xattrs, &fp, true)?;
            fsops::chmod_fd(f.as_fd(), e.mode).at("chmod", &fp)?;
            fsops::set_mtime_fd(f.as_fd(), e.mtime).at("set mtime of", &fp)?;
            report.files_written += 1;
            report.bytes_written += n;
        }
        EntryKind::Symlink { target: t } => {
            fsops::symlink_at(t, pfd, name).at("symlink", &fp)?;
            fsops::set_mtime_at(pfd, name, e.mtime).at("set mtime of", &fp)?;
        }
        EntryKind::Fifo => {
            fsops::mkfifo_at(pfd, name, 0o600).at("mkfifo", &fp)?;
            fsops::chmod_at(pfd, name, e.mode).at("chmod", &fp)?;
            fsops::set_mtime_at(pfd, name, e.mtime).at("set mtime of", &fp)?;
        }
        EntryKind::Socket | EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. } => {
            report.skipped.push((path.clone(), e.kind.name()));
            return Ok(());
        }
    }
    report.entries += 1;
    Ok(())
}

/// Sets mode and mtime of directories, deepest (bytewise greatest) first.
fn finish_dirs<'p>(
    cur: &mut Cursor<'_>,
    root_fd: BorrowedFd<'_>,
    dirs: impl DoubleEndedIterator<Item = (&'p RelPath, &'p Entry)>,
    target: &Path,
) -> Result<()> {
    for (p, e) in dirs.rev() {
        let fp = full(target, p);
        let owned;
        let fd = if p.is_root() {
            root_fd
        } else {
            let pfd = cur.dir(&p.parent().unwrap_or_default())?;
            owned = fsops::open_dir_at(pfd, name_of(p)).at("open dir", &fp)?;
            owned.as_fd()
        };
        fsops::chmod_fd(fd, e.mode).at("chmod", &fp)?;
        fsops::set_mtime_fd(fd, e.mtime).at("set mtime of", &fp)?;
    }
    Ok(())
}

fn tmp_sibling_name(name: &[u8]) -> Vec<u8> {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut v = b".".to_vec();
    v.extend_from_slice(name);
    v.extend_from_slice(
        format!(
            ".restore-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
        .as_bytes(),
    );
    v
}

fn split_target(target: &Path) -> Result<(PathBuf, Vec<u8>)> {
    let name = target
        .file_name()
        .ok_or(CheckpointError::TargetNotUsable {
            path: target.to_owned(),
            problem: "has no final component",
        })?
        .as_bytes()
        .to_vec();
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// Materialises `state` (one root) at `target`, which must not exist or be an empty
/// directory. The tree is built in a temporary sibling and renamed into place only when
/// complete; on error the temporary tree is removed and the target is untouched. Every
/// blob is verified while it is read. When the state is empty (the root did not exist), an
/// empty target directory is removed and nothing is created. Setuid and setgid bits are
/// not restored ([`restore_root_with`] can keep them).
pub fn restore_root(blobs: &BlobStore, state: &RootState, target: &Path) -> Result<RestoreReport> {
    restore_root_with(blobs, state, target, RestoreOptions::default())
}

/// [`restore_root`] with `opts`.
pub fn restore_root_with(
    blobs: &BlobStore,
    state: &RootState,
    target: &Path,
    opts: RestoreOptions,
) -> Result<RestoreReport> {
    restore_root_from(Contents::of(blobs), state, target, opts)
}

/// [`restore_root_with`], contents from `src`.
pub(super) fn restore_root_from(
    src: Contents<'_>,
    state: &RootState,
    target: &Path,
    opts: RestoreOptions,
) -> Result<RestoreReport> {
    check_root_state(state).map_err(|e| state_error(target, e))?;
    check_path_room(target, state)?;
    let (state, setid_cleared) = apply_options(state, opts);
    let state = state.as_ref();
    let (parent, name) = split_target(target)?;
    let parent_fd = fsops::open_dir(&parent).at("open dir", &parent)?;
    let target_exists = match fsops::lstat_at(parent_fd.as_fd(), &name) {
        Ok(st) if fsops::file_type(&st) == libc::S_IFDIR => {
            let mut rd = fs::read_dir(target).at("read dir", target)?;
            if rd.next().is_some() {
                return Err(CheckpointError::TargetNotUsable {
                    path: target.to_owned(),
                    problem: "is not empty",
                });
            }
            true
        }
        Ok(_) => {
            return Err(CheckpointError::TargetNotUsable {
                path: target.to_owned(),
                problem: "exists and is not a directory",
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(CheckpointError::io("stat", target, e)),
    };
    let mut report = RestoreReport {
        setid_cleared,
        ..RestoreReport::default()
    };
    let Some((_, root_entry)) = state.iter().next() else {
        if target_exists {
            fsops::unlink_at(parent_fd.as_fd(), &name, true).at("remove", target)?;
        }
        return Ok(report);
    };
    if root_entry.kind.is_unsupported_for_restore() {
        return Err(CheckpointError::UnsafeRestore {
            target: target.to_owned(),
            path: String::new(),
            problem: format!(
                "the root is a {}, which cannot be restored",
                root_entry.kind.name()
            ),
        });
    }
    report.root_present = true;
    let tmp = tmp_sibling_name(&name);
    let tmp_path = parent.join(std::ffi::OsStr::from_bytes(&tmp));
    let result = build_tree(src, state, parent_fd.as_fd(), &tmp, &tmp_path, &mut report);
    let result = result.and_then(|()| {
        if target_exists && !root_entry.is_dir() {
            fsops::unlink_at(parent_fd.as_fd(), &name, true).at("remove", target)?;
        }
        fsops::rename_at(parent_fd.as_fd(), &tmp, parent_fd.as_fd(), &name)
            .at("rename into", target)
    });
    if let Err(e) = result {
        let _ = remove_tree(&tmp_path);
        return Err(e);
    }
    Ok(report)
}

fn build_tree(
    src: Contents<'_>,
    state: &RootState,
    parent_fd: BorrowedFd<'_>,
    tmp: &[u8],
    tmp_path: &Path,
    report: &mut RestoreReport,
) -> Result<()> {
    let (root_path, root_entry) = state.iter().next().expect("caller checked non-empty");
    if !root_entry.is_dir() {
        // A lone file, symlink or fifo root.
        let mut dummy = Cursor::new(parent_fd, tmp_path);
        let tmp_rel = RelPath::new(tmp.to_vec())?;
        return create_entry(
            src,
            parent_fd,
            &mut dummy,
            &tmp_rel,
            root_entry,
            tmp_path.parent().unwrap_or(Path::new(".")),
            report,
        );
    }
    debug_assert!(root_path.is_root());
    fsops::mkdir_at(parent_fd, tmp, 0o700).at("mkdir", tmp_path)?;
    let root_fd = fsops::open_dir_at(parent_fd, tmp).at("open dir", tmp_path)?;
    if !root_entry.xattrs.is_empty() {
        let f = File::from(root_fd.try_clone().at("dup", tmp_path)?);
        sync_xattrs(&f, &root_entry.xattrs, tmp_path, true)?;
    }
    report.entries += 1;
    build_children(src, state, root_fd.as_fd(), tmp_path, report)?;
    let mut cur = Cursor::new(root_fd.as_fd(), tmp_path);
    finish_dirs(
        &mut cur,
        root_fd.as_fd(),
        state.iter().filter(|(_, e)| e.is_dir()),
        tmp_path,
    )
}

/// True for a regular file whose content is written from a blob (not a hardlink to another
/// member of its group).
fn carries_content(path: &RelPath, e: &Entry) -> bool {
    match &e.kind {
        EntryKind::File { hardlink, .. } => hardlink.as_ref().is_none_or(|g| g == path),
        _ => false,
    }
}

/// Creates every entry of `state` but the root inside the empty directory `root_fd`
/// (directories get a temporary 0700 mode; the caller finishes them).
fn build_children(
    src: Contents<'_>,
    state: &RootState,
    root_fd: BorrowedFd<'_>,
    root_path: &Path,
    report: &mut RestoreReport,
) -> Result<()> {
    // Directories first (in path order, so parents before children), then the regular
    // files that carry content, on all cores (file creation is most of a restore's cost),
    // then what links to them or needs nothing but a name: hardlinks, symlinks, fifos.
    let mut cur = Cursor::new(root_fd, root_path);
    let mut link_cur = Cursor::new(root_fd, root_path);
    let children = || state.iter().skip(1);
    for (path, e) in children().filter(|(_, e)| e.is_dir()) {
        let pfd = cur.dir(&path.parent().unwrap_or_default())?;
        create_entry(src, pfd, &mut link_cur, path, e, root_path, report)?;
    }
    let files: Vec<(&RelPath, &Entry)> =
        children().filter(|(p, e)| carries_content(p, e)).collect();
    write_files(src, &files, root_fd, root_path, report)?;
    for (path, e) in children().filter(|(p, e)| !e.is_dir() && !carries_content(p, e)) {
        let pfd = cur.dir(&path.parent().unwrap_or_default())?;
        create_entry(src, pfd, &mut link_cur, path, e, root_path, report)?;
    }
    Ok(())
}

/// Creates the regular files `files` (sorted by path; their directories exist) below
/// `root_fd`, split into contiguous runs of about equal size, one per core. Each run walks
/// with its own descriptors; the first error is returned once every run has stopped.
fn write_files(
    src: Contents<'_>,
    files: &[(&RelPath, &Entry)],
    root_fd: BorrowedFd<'_>,
    root_path: &Path,
    report: &mut RestoreReport,
) -> Result<()> {
    let run = |part: &[(&RelPath, &Entry)], failed: &AtomicBool| -> Result<RestoreReport> {
        let mut cur = Cursor::new(root_fd, root_path);
        let mut link_cur = Cursor::new(root_fd, root_path);
        let mut rep = RestoreReport::default();
        for (path, e) in part {
            if failed.load(Ordering::Relaxed) {
                break;
            }
            let pfd = cur.dir(&path.parent().unwrap_or_default())?;
            create_entry(src, pfd, &mut link_cur, path, e, root_path, &mut rep)
                .inspect_err(|_| failed.store(true, Ordering::Relaxed))?;
        }
        Ok(rep)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let failed = AtomicBool::new(false);
    if threads < 2 || files.len() < 64 {
        let rep = run(files, &failed)?;
        report.absorb(rep);
        return Ok(());
    }
    // Split by size (plus a per-file cost) so a few big files do not serialise the rest.
    let cost = |e: &Entry| match e.kind {
        EntryKind::File { size, .. } => size + 16 * 1024,
        _ => 0,
    };
    let total: u64 = files.iter().map(|(_, e)| cost(e)).sum();
    let share = total.div_ceil(threads as u64).max(1);
    let mut parts: Vec<&[(&RelPath, &Entry)]> = Vec::new();
    let (mut start, mut acc) = (0, 0);
    for (i, (_, e)) in files.iter().enumerate() {
        acc += cost(e);
        if acc >= share && parts.len() + 1 < threads {
            parts.push(&files[start..=i]);
            (start, acc) = (i + 1, 0);
        }
    }
    parts.push(&files[start..]);
    let results: Vec<Result<RestoreReport>> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .map(|part| s.spawn(|| run(part, &failed)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(CheckpointError::WorkerPanicked)))
            .collect()
    });
    for r in results {
        report.absorb(r?);
    }
    Ok(())
}

/// Materialises `state` (one root, which must be a directory) inside the existing directory
/// `target` without replacing `target` itself, for a directory that cannot be renamed (the
/// build directory is a mount point in the Nix sandbox). `target` is a trusted path;
/// nothing below it is ever followed.
///
/// The tree is first built in a hidden directory inside `target`
/// (`.checkpoint-restore-<pid>-<n>`, a name the state does not use), verifying every blob
/// while it is written; a missing or corrupt blob, or any other failure at this point,
/// removes that directory and leaves `target` as it was (content, mode, mtime). Only then
/// is every other entry of `target` removed (never following symlinks, opening up
/// read-only directories first), each top-level entry renamed into `target`, the hidden
/// directory removed, and `target`'s own mode, mtime and xattrs set from the root entry.
/// A failure after removal started is [`CheckpointError::RestoreIncomplete`]. Needs room
/// for both trees for a moment; the checkpoint itself must not lie inside `target`.
pub fn restore_root_into(
    blobs: &BlobStore,
    state: &RootState,
    target: &Path,
) -> Result<RestoreReport> {
    restore_root_into_from(Contents::of(blobs), state, target)
}

/// [`restore_root_into`], contents from `src`. A staging directory inside `target` is left
/// in place (its owner removes it); the state must not use its name.
pub(super) fn restore_root_into_from(
    src: Contents<'_>,
    state: &RootState,
    target: &Path,
) -> Result<RestoreReport> {
    check_root_state(state).map_err(|e| state_error(target, e))?;
    check_path_room(target, state)?;
    let (state, setid_cleared) = apply_options(state, RestoreOptions::default());
    let state = state.as_ref();
    let kept = src.staged.filter(|s| s.is_in(target)).map(Staging::name);
    if let Some(name) = kept {
        if state.contains_key(&RelPath::new(name.to_vec())?) {
            return Err(CheckpointError::UnsafeRestore {
                target: target.to_owned(),
                path: RelPath::new(name.to_vec())?.escaped(),
                problem: "the restored state uses the name of the staging directory".into(),
            });
        }
    }
    let root_entry = match state.get(&RelPath::root()) {
        Some(e) if e.is_dir() => e,
        other => {
            let what = other.map_or("absent".to_owned(), |e| format!("a {}", e.kind.name()));
            return Err(CheckpointError::UnsafeRestore {
                target: target.to_owned(),
                path: String::new(),
                problem: format!(
                    "the recorded root is {what}; only a directory can be restored into an existing one"
                ),
            });
        }
    };
    let target_fd = fsops::open_dir(target).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOTDIR) {
            CheckpointError::TargetNotUsable {
                path: target.to_owned(),
                problem: "is not a directory",
            }
        } else {
            CheckpointError::io("open dir", target, e)
        }
    })?;
    let tfd = target_fd.as_fd();
    let orig = fsops::fstat(tfd).at("stat", target)?;
    make_writable(tfd, target)?;
    let (tmp, tmp_fd) = make_hidden_dir(tfd, state, target)?;
    let tmp_path = target.join(std::ffi::OsStr::from_bytes(&tmp));
    let mut report = RestoreReport {
        root_present: true,
        setid_cleared,
        ..RestoreReport::default()
    };
    let built = build_children(src, state, tmp_fd.as_fd(), &tmp_path, &mut report).and_then(|()| {
        // Top-level directories stay writable until they are moved: moving a directory
        // to another parent needs write access to it (its `..` changes).
        let mut cur = Cursor::new(tmp_fd.as_fd(), &tmp_path);
        let deep = state.iter().filter(|(p, e)| e.is_dir() && p.depth() >= 2);
        finish_dirs(&mut cur, tmp_fd.as_fd(), deep, &tmp_path)
    });
    if let Err(e) = built {
        // Leave the target as it was, its own mode and mtime included (best effort: the
        // error that matters is `e`).
        let _ = remove_at(tfd, &tmp, &tmp_path);
        let _ = fsops::chmod_fd(tfd, orig.st_mode & 0o7777);
        let _ = fsops::set_mtime_fd(
            tfd,
            Timestamp {
                sec: orig.st_mtime,
                nsec: orig.st_mtime_nsec as u32,
            },
        );
        return Err(e);
    }
    let swapped = (|| {
        for name in fsops::read_dir_names(tfd).at("read dir", target)? {
            if name != tmp && Some(&name[..]) != kept {
                remove_at(tfd, &name, &target.join(std::ffi::OsStr::from_bytes(&name)))?;
            }
        }
        let top = state
            .iter()
            .filter(|(p, e)| p.depth() == 1 && !e.kind.is_unsupported_for_restore());
        for (p, _) in top {
            fsops::rename_at(tmp_fd.as_fd(), name_of(p), tfd, name_of(p))
                .at("rename into", &full(target, p))?;
        }
        fsops::unlink_at(tfd, &tmp, true).at("remove", &tmp_path)?;
        let mut cur = Cursor::new(tfd, target);
        let top_dirs = state.iter().filter(|(p, e)| e.is_dir() && p.depth() == 1);
        finish_dirs(&mut cur, tfd, top_dirs, target)?;
        let f = File::from(target_fd.try_clone().at("dup", target)?);
        sync_xattrs(&f, &root_entry.xattrs, target, false)?;
        fsops::chmod_fd(tfd, root_entry.mode).at("chmod", target)?;
        fsops::set_mtime_fd(tfd, root_entry.mtime).at("set mtime of", target)
    })();
    if let Err(e) = swapped {
        let _ = remove_at(tfd, &tmp, &tmp_path);
        return Err(CheckpointError::RestoreIncomplete {
            target: target.to_owned(),
            source: Box::new(e),
        });
    }
    report.entries += 1;
    Ok(report)
}

/// Creates a fresh 0700 directory `.checkpoint-restore-<pid>-<n>` in `parent` whose name
/// `state` does not use at its top level; returns its name and descriptor.
fn make_hidden_dir(
    parent: BorrowedFd<'_>,
    state: &RootState,
    parent_path: &Path,
) -> Result<(Vec<u8>, OwnedFd)> {
    static N: AtomicU64 = AtomicU64::new(0);
    loop {
        let name = format!(
            ".checkpoint-restore-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
        .into_bytes();
        if state.contains_key(&RelPath::new(name.clone())?) {
            continue;
        }
        let path = parent_path.join(std::ffi::OsStr::from_bytes(&name));
        match fsops::mkdir_at(parent, &name, 0o700) {
            Ok(()) => {
                let fd = fsops::open_dir_at(parent, &name).at("open dir", &path)?;
                return Ok((name, fd));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(CheckpointError::io("mkdir", path, e)),
        }
    }
}

/// Removes `name` in `dir` and, if it is a directory, everything below it, never following
/// a symlink and giving the owner access to read-only directories first. Absent is fine.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &[u8], path: &Path) -> Result<()> {
    let st = match fsops::lstat_at(dir, name) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CheckpointError::io("stat", path, e)),
    };
    if fsops::file_type(&st) != libc::S_IFDIR {
        return fsops::unlink_at(dir, name, false).at("remove", path);
    }
    let fd = fsops::open_dir_at(dir, name).at("open dir", path)?;
    make_writable(fd.as_fd(), path)?;
    for child in fsops::read_dir_names(fd.as_fd()).at("read dir", path)? {
        remove_at(
            fd.as_fd(),
            &child,
            &path.join(std::ffi::OsStr::from_bytes(&child)),
        )?;
    }
    fsops::unlink_at(dir, name, true).at("remove", path)
}

/// Applies one layer's diff for one root to `target`, a tree in state `prev`, turning it
/// into state `next` (= `prev` + `diff`). Blobs the diff needs are verified before anything
/// is touched; every path is reached without following symlinks, and the tree must match
/// `prev` where the diff touches it. Not atomic: on error the tree is in an unspecified
/// state between `prev` and `next` and should be discarded. A diff that deletes or
/// re-kinds the root itself is applied as a full restore swapped into place.
pub fn apply_diff(
    blobs: &BlobStore,
    prev: &RootState,
    next: &RootState,
    diff: &RootDiff,
    target: &Path,
) -> Result<RestoreReport> {
    apply_diff_with(Contents::of(blobs), prev, next, diff, target, true)
}

/// [`apply_diff`], but a blob is verified only while it is written (a corrupt one stops the
/// restore with the tree partly changed, which [`apply_diff`] never leaves for a corrupt
/// blob): for a caller that discards the tree on any error, it saves reading every new
/// blob twice.
pub fn apply_diff_verifying_on_write(
    blobs: &BlobStore,
    prev: &RootState,
    next: &RootState,
    diff: &RootDiff,
    target: &Path,
) -> Result<RestoreReport> {
    apply_diff_with(Contents::of(blobs), prev, next, diff, target, false)
}

/// [`apply_diff_verifying_on_write`], contents from `src`.
pub(super) fn apply_diff_from(
    src: Contents<'_>,
    prev: &RootState,
    next: &RootState,
    diff: &RootDiff,
    target: &Path,
) -> Result<RestoreReport> {
    apply_diff_with(src, prev, next, diff, target, false)
}

fn apply_diff_with(
    src: Contents<'_>,
    prev: &RootState,
    next: &RootState,
    diff: &RootDiff,
    target: &Path,
    verify_first: bool,
) -> Result<RestoreReport> {
    check_root_state(next).map_err(|e| state_error(target, e))?;
    check_path_room(target, next)?;
    let (next, cleared) = apply_options(next, RestoreOptions::default());
    let next = next.as_ref();
    let diff = if cleared.is_empty() {
        Cow::Borrowed(diff)
    } else {
        Cow::Owned(RootDiff {
            changed: diff
                .changed
                .iter()
                .map(|(p, e)| (p.clone(), next.get(p).unwrap_or(e).clone()))
                .collect(),
            deleted: diff.deleted.clone(),
        })
    };
    let diff = diff.as_ref();
    let setid_cleared: Vec<RelPath> = cleared
        .into_iter()
        .filter(|p| diff.changed.binary_search_by(|(q, _)| q.cmp(p)).is_ok())
        .collect();
    for (p, e) in diff.changed.iter().filter(|_| verify_first) {
        if let EntryKind::File { size, blake3, .. } = &e.kind {
            if prev.get(p).and_then(Entry::blob) != Some(*blake3) {
                src.blobs.verify(blake3, Expect::Exactly(*size))?;
            }
        }
    }
    let root = RelPath::root();
    let root_dir_both =
        prev.get(&root).is_some_and(Entry::is_dir) && next.get(&root).is_some_and(Entry::is_dir);
    if !root_dir_both {
        return replace_whole(src, next, target);
    }
    let mut report = RestoreReport {
        root_present: true,
        setid_cleared,
        ..RestoreReport::default()
    };
    let root_fd = fsops::open_dir(target).at("open dir", target)?;
    let mut cur = Cursor::new(root_fd.as_fd(), target);
    let mut link_cur = Cursor::new(root_fd.as_fd(), target);
    let mut touched: BTreeSet<RelPath> = BTreeSet::new();
    // Entries to create once the loop has made every directory: regular files that carry
    // content, then the rest (hardlinks, symlinks, fifos).
    let mut files: Vec<(&RelPath, &Entry)> = Vec::new();
    let mut names: Vec<(&RelPath, &Entry)> = Vec::new();
    let mismatch = |p: &RelPath, problem: &str| CheckpointError::TreeMismatch {
        target: target.to_owned(),
        path: p.escaped(),
        problem: problem.to_owned(),
    };

    for p in diff.deleted.iter().rev() {
        let parent = p.parent().unwrap_or_default();
        let pfd = cur.dir(&parent)?;
        let fp = full(target, p);
        let st = match fsops::lstat_at(pfd, name_of(p)) {
            Ok(st) => st,
            // Sockets and devices are never restored, so they may well be absent.
            Err(_)
                if prev
                    .get(p)
                    .is_some_and(|e| e.kind.is_unsupported_for_restore()) =>
            {
                continue
            }
            Err(_) => return Err(mismatch(p, "should exist")),
        };
        let is_dir = fsops::file_type(&st) == libc::S_IFDIR;
        if prev.get(p).map(Entry::is_dir) != Some(is_dir) {
            return Err(mismatch(p, "has another kind than the previous state says"));
        }
        make_writable(pfd, &full(target, &parent))?;
        fsops::unlink_at(pfd, name_of(p), is_dir).at("remove", &fp)?;
        touched.insert(parent);
        report.entries += 1;
    }

    for (p, e) in &diff.changed {
        if p.is_root() {
            let f = File::from(root_fd.try_clone().at("dup", target)?);
            sync_xattrs(&f, &e.xattrs, target, false)?;
            touched.insert(root.clone());
            continue;
        }
        let parent = p.parent().unwrap_or_default();
        let fp = full(target, p);
        let pfd = cur.dir(&parent)?;
        let on_disk = match fsops::lstat_at(pfd, name_of(p)) {
            Ok(st) => Some(fsops::file_type(&st)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(CheckpointError::io("stat", fp, err)),
        };
        let old = prev.get(p);
        let expected_type = old.map(|o| match o.kind {
            EntryKind::Dir => Some(libc::S_IFDIR),
            EntryKind::File { .. } => Some(libc::S_IFREG),
            EntryKind::Symlink { .. } => Some(libc::S_IFLNK),
            EntryKind::Fifo => Some(libc::S_IFIFO),
            // Never restored, so whatever is there (probably nothing) is accepted.
            _ => on_disk,
        });
        match expected_type {
            Some(expected) if expected != on_disk => {
                return Err(mismatch(
                    p,
                    "does not have the kind the previous state says",
                ));
            }
            None if on_disk.is_some() => {
                return Err(mismatch(
                    p,
                    "exists but the previous state does not have it",
                ));
            }
            _ => {}
        }
        let same_type = |t: libc::mode_t| on_disk == Some(t);
        let in_place = match (old.map(|o| &o.kind), &e.kind) {
            (Some(EntryKind::Dir), EntryKind::Dir) => same_type(libc::S_IFDIR),
            (
                Some(EntryKind::File {
                    blake3: h1,
                    hardlink: l1,
                    ..
                }),
                EntryKind::File {
                    blake3: h2,
                    hardlink: l2,
                    ..
                },
            ) => h1 == h2 && l1 == l2 && same_type(libc::S_IFREG),
            (Some(EntryKind::Symlink { target: t1 }), EntryKind::Symlink { target: t2 }) => {
                t1 == t2 && same_type(libc::S_IFLNK)
            }
            (Some(EntryKind::Fifo), EntryKind::Fifo) => same_type(libc::S_IFIFO),
            _ => false,
        };
        if in_place {
            match &e.kind {
                EntryKind::Dir => {
                    let d = File::from(fsops::open_dir_at(pfd, name_of(p)).at("open dir", &fp)?);
                    sync_xattrs(&d, &e.xattrs, &fp, false)?;
                    touched.insert(p.clone());
                }
                EntryKind::File { .. } => {
                    let f = fsops::open_nofollow_at(pfd, name_of(p)).at("open", &fp)?;
                    sync_xattrs(&f, &e.xattrs, &fp, false)?;
                    fsops::chmod_fd(f.as_fd(), e.mode).at("chmod", &fp)?;
                    fsops::set_mtime_fd(f.as_fd(), e.mtime).at("set mtime of", &fp)?;
                }
                EntryKind::Fifo => {
                    fsops::chmod_at(pfd, name_of(p), e.mode).at("chmod", &fp)?;
                    fsops::set_mtime_at(pfd, name_of(p), e.mtime).at("set mtime of", &fp)?;
                }
                _ => fsops::set_mtime_at(pfd, name_of(p), e.mtime).at("set mtime of", &fp)?,
            }
            report.entries += 1;
            continue;
        }
        make_writable(pfd, &full(target, &parent))?;
        if let Some(t) = on_disk {
            let is_dir = t == libc::S_IFDIR;
            fsops::unlink_at(pfd, name_of(p), is_dir).map_err(|err| {
                if err.raw_os_error() == Some(libc::ENOTEMPTY) {
                    mismatch(p, "holds files the previous state does not have")
                } else {
                    CheckpointError::io("remove", fp.clone(), err)
                }
            })?;
        }
        touched.insert(parent.clone());
        // Regular files with content are written after the loop, on all cores; what links
        // to them (or needs only a name) after those. Directories now: what follows may
        // go into them.
        if !e.is_dir() {
            if carries_content(p, e) {
                files.push((p, e));
            } else {
                names.push((p, e));
            }
            continue;
        }
        // `cur` may have been invalidated for this path's subtree; the parent stays valid.
        let pfd = cur.dir(&parent)?;
        create_entry(src, pfd, &mut link_cur, p, e, target, &mut report)?;
        if e.is_dir() {
            touched.insert(p.clone());
        }
    }

    write_files(src, &files, root_fd.as_fd(), target, &mut report)?;
    for (p, e) in names {
        let pfd = cur.dir(&p.parent().unwrap_or_default())?;
        create_entry(src, pfd, &mut link_cur, p, e, target, &mut report)?;
    }

    // Directories deleted by this layer were touched too; they have nothing to finish.
    let dirs: Vec<(&RelPath, &Entry)> = touched
        .iter()
        .filter_map(|p| next.get_key_value(p).filter(|(_, e)| e.is_dir()))
        .collect();
    finish_dirs(&mut cur, root_fd.as_fd(), dirs.into_iter(), target)?;
    Ok(report)
}

/// Gives the owner write and search permission on a directory we are about to modify
/// (its recorded mode is set again by `finish_dirs`).
pub(super) fn make_writable(fd: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let st = fsops::fstat(fd).at("stat", path)?;
    let mode = st.st_mode & 0o7777;
    if mode & 0o700 != 0o700 {
        fsops::chmod_fd(fd, (mode | 0o700) as u32).at("chmod", path)?;
    }
    Ok(())
}

/// Restores `next` into a sibling, then swaps it with `target` (root created, deleted or
/// re-kinded by the layer).
fn replace_whole(src: Contents<'_>, next: &RootState, target: &Path) -> Result<RestoreReport> {
    let (parent, name) = split_target(target)?;
    let fresh = parent.join(std::ffi::OsStr::from_bytes(&tmp_sibling_name(&name)));
    let report = restore_root_from(src, next, &fresh, RestoreOptions::default())?;
    let old = parent.join(std::ffi::OsStr::from_bytes(&tmp_sibling_name(&name)));
    match fs::symlink_metadata(target) {
        Ok(_) => fs::rename(target, &old).at("rename", target)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(CheckpointError::io("stat", target, e)),
    }
    if report.root_present {
        fs::rename(&fresh, target).at("rename into", target)?;
    }
    if fs::symlink_metadata(&old).is_ok() {
        remove_tree(&old).at("remove", &old)?;
    }
    Ok(report)
}

/// Creates the file `rel` under `root` with `content` and permission bits `bits`, where
/// nothing is: every directory on the way is opened without following a symlink, and the
/// file is created exclusively, so the write cannot land outside `root`.
pub fn write_new_file_under(
    root: &Path,
    rel: &RelPath,
    content: &[u8],
    bits: u32,
) -> io::Result<()> {
    let mut dir = fsops::open_dir(root)?;
    let names: Vec<&[u8]> = rel.components().collect();
    let Some((name, parents)) = names.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the root is not a file",
        ));
    };
    for parent in parents {
        dir = fsops::open_dir_at(dir.as_fd(), parent)?;
    }
    let mut file = fsops::create_file_at(dir.as_fd(), name, bits)?;
    file.write_all(content)?;
    fsops::chmod_fd(file.as_fd(), bits)
}

/// Removes a tree without following symlinks, first granting the owner access to
/// read-only directories (restored trees may contain 0555 directories).
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let m = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !m.is_dir() {
        return fs::remove_file(path);
    }
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    fn open_up(p: &Path) -> io::Result<()> {
        let m = fs::symlink_metadata(p)?;
        if m.is_dir() {
            fs::set_permissions(p, fs::Permissions::from_mode(0o700))?;
            for e in fs::read_dir(p)? {
                open_up(&e?.path())?;
            }
        }
        Ok(())
    }
    open_up(path)?;
    fs::remove_dir_all(path)
}
