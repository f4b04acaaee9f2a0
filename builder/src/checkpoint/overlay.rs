//! Overlay for incremental builds: carries the differences between two states of the
//! source tree (the earlier build's, recorded; this build's, live on disk) into a tree
//! restored from a later point of the earlier build, so the build tool sees exactly what
//! changed. Design §3: the content hash is the truth; mtimes serve the build tool — every
//! path that changed becomes strictly newer than anything restored, every path that did not
//! keeps the restored mtime.
//!
//! Every write goes through `O_NOFOLLOW` descriptors walked from the target, as in
//! [`super::restore`]; the source directory is only read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::chunk_buffer::read_in_chunks;
use super::error::{CheckpointError, IoResultExt, Result};
use super::fsops;
use super::manifest::{ContentHash, Entry, EntryKind, Timestamp};
use super::path::RelPath;
use super::restore::{full, make_writable, name_of, remove_at, state_error, sync_xattrs, Cursor};
use super::state::{check_root_state, RootState};

/// How one path differs between the old and the new state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OverlayChange {
    /// Only in the new state: copied from the new tree.
    Added,
    /// Only in the old state: removed from the target (with anything below it).
    Removed,
    /// Same kind, other content (file hash, symlink target, device number): replaced.
    Content,
    /// Another kind (file ↔ directory ↔ symlink ...): replaced.
    Kind,
    /// Same kind and content, other mode or xattrs: updated in place, content kept.
    Mode,
}

/// What [`overlay_changes`] did.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct OverlayReport {
    /// Paths only in the new state.
    pub added: usize,
    /// Paths only in the old state (every removed descendant counted).
    pub removed: usize,
    /// Paths whose content or kind changed.
    pub changed: usize,
    /// Paths whose mode or xattrs alone changed.
    pub mode_changed: usize,
    /// Every path that differs, sorted, with how.
    pub changes: Vec<(RelPath, OverlayChange)>,
    /// Added or changed entries that cannot be created (sockets, devices), with their kind.
    pub skipped: Vec<(RelPath, &'static str)>,
}

/// How `n` differs from `o` at the same path, if it does (hardlink grouping and mtimes are
/// not differences).
pub fn classify(o: &Entry, n: &Entry) -> Option<OverlayChange> {
    if o.kind.name() != n.kind.name() {
        return Some(OverlayChange::Kind);
    }
    let content = match (&o.kind, &n.kind) {
        (
            EntryKind::File {
                size: s1,
                blake3: h1,
                ..
            },
            EntryKind::File {
                size: s2,
                blake3: h2,
                ..
            },
        ) => s1 != s2 || h1 != h2,
        (a, b) => a != b,
    };
    if content {
        Some(OverlayChange::Content)
    } else if o.mode != n.mode || o.xattrs != n.xattrs {
        Some(OverlayChange::Mode)
    } else {
        None
    }
}

/// The differences between `old` and `new`, sorted by path (hardlink grouping and mtimes
/// are not differences).
pub fn overlay_diff(old: &RootState, new: &RootState) -> Vec<(RelPath, OverlayChange)> {
    let paths: BTreeSet<&RelPath> = old.keys().chain(new.keys()).collect();
    paths
        .into_iter()
        .filter_map(|p| {
            let c = match (old.get(p), new.get(p)) {
                (None, Some(_)) => Some(OverlayChange::Added),
                (Some(_), None) => Some(OverlayChange::Removed),
                (Some(o), Some(n)) => classify(o, n),
                (None, None) => None,
            };
            c.map(|c| (p.clone(), c))
        })
        .collect()
}

/// The differences between `old` and `new`, and a report counting them by kind.
fn counted_changes(
    old: &RootState,
    new: &RootState,
) -> (Vec<(RelPath, OverlayChange)>, OverlayReport) {
    let changes = overlay_diff(old, new);
    let mut report = OverlayReport::default();
    for (_, c) in &changes {
        match c {
            OverlayChange::Added => report.added += 1,
            OverlayChange::Removed => report.removed += 1,
            OverlayChange::Content | OverlayChange::Kind => report.changed += 1,
            OverlayChange::Mode => report.mode_changed += 1,
        }
    }
    (changes, report)
}

/// The directories of `new` whose list of entries changed (something added or removed).
fn relisted_dirs(changes: &[(RelPath, OverlayChange)], new: &RootState) -> BTreeSet<RelPath> {
    changes
        .iter()
        .filter(|(_, c)| matches!(c, OverlayChange::Added | OverlayChange::Removed))
        .filter_map(|(p, _)| p.parent())
        .filter(|d| new.get(d).is_some_and(Entry::is_dir))
        .collect()
}

/// The least mtime a changed path gets: one second after `min_mtime`.
pub fn floor_after(min_mtime: Timestamp) -> Timestamp {
    Timestamp {
        sec: min_mtime.sec.saturating_add(1),
        nsec: min_mtime.nsec,
    }
}

/// Applies to `target` every difference between `old` and `new` (two states of the same
/// source tree; `new` is the state of the tree at `new_dir`, e.g. from
/// [`super::snapshot::scan_root`]). `target` holds a tree restored from a later point of the
/// build that recorded `old`; paths in neither state (build products) are left alone,
/// except below a directory that is removed or replaced.
///
/// - Added and changed paths are created from `new`: file content copied from `new_dir`
///   (and checked against `new`'s hash: [`CheckpointError::SourceChanged`] otherwise),
///   symlink targets, modes and xattrs from `new`. Whatever the target had there goes.
/// - Removed paths are removed with everything below them.
/// - Mode or xattr changes are applied in place (content and inode kept, unless the file
///   is hardlinked, in which case it is replaced by a copy).
/// - Every added or changed path (mode changes included) gets the mtime
///   `max(min_mtime + 1 s, its mtime in new)`: pass the newest mtime of the restored tree
///   ([`super::state::max_mtime`]) so the build tool sees them as newer than everything
///   it built. Directories created because they were missing get it too.
/// - Every other path keeps the mtime it has in `target`. A directory that exists in both
///   states gets the new mtime only if its list of entries changed (something added or
///   removed in it); otherwise its mtime is put back after the changes inside it.
///
/// `new_dir` is only read and must not lie inside `target`. Nothing is written outside
/// `target`: every path is walked through `O_NOFOLLOW` descriptors, a symlink in the way is
/// an error. Not atomic: on error the target is half-updated and should be discarded.
pub fn overlay_changes(
    old: &RootState,
    new: &RootState,
    new_dir: &Path,
    target: &Path,
    min_mtime: Timestamp,
) -> Result<OverlayReport> {
    check_root_state(old).map_err(|e| state_error(target, e))?;
    check_root_state(new).map_err(|e| state_error(new_dir, e))?;
    let root = RelPath::root();
    if !old.get(&root).is_some_and(Entry::is_dir) || !new.get(&root).is_some_and(Entry::is_dir) {
        return Err(CheckpointError::TreeMismatch {
            target: target.to_owned(),
            path: String::new(),
            problem: "an overlay needs both states to be directories".into(),
        });
    }
    let (changes, mut report) = counted_changes(old, new);
    let floor = floor_after(min_mtime);
    let target_fd = fsops::open_dir(target).at("open dir", target)?;
    let src_fd = fsops::open_dir(new_dir).at("open dir", new_dir)?;
    let mut ov = Overlay {
        target,
        root: target_fd.as_fd(),
        new,
        floor,
        dirs: BTreeMap::new(),
    };

    // Removals first, deepest first.
    for (p, c) in changes.iter().rev() {
        if *c == OverlayChange::Removed {
            ov.remove(p)?;
        }
    }
    // Then creations and updates, parents first.
    let mut src = Cursor::new(src_fd.as_fd(), new_dir);
    for (p, c) in &changes {
        if *c != OverlayChange::Removed {
            ov.put(p, *c, &mut src, new_dir, &mut report)?;
        }
    }
    // Directories whose entry list changed get the new mtime even if nothing had to be
    // done on disk (e.g. the removed path was already gone).
    let relisted = relisted_dirs(&changes, new);
    for d in &relisted {
        if let Some(fd) = ov.open(d, false)? {
            ov.touch(d, fd.as_fd())?;
        }
        ov.mark(d);
    }
    report.changes = changes;
    ov.finish()?;
    Ok(report)
}

/// What to do with a directory once everything inside it is done.
#[derive(Debug)]
struct DirFix {
    /// Mode and mtime it had before we touched it; `None` for a directory we created.
    orig: Option<(u32, Timestamp)>,
    /// Gets `new`'s mode and the bumped mtime (it changed, or it was created).
    bump: bool,
}

struct Overlay<'a> {
    target: &'a Path,
    root: BorrowedFd<'a>,
    new: &'a RootState,
    floor: Timestamp,
    dirs: BTreeMap<RelPath, DirFix>,
}

impl Overlay<'_> {
    fn bumped(&self, e: &Entry) -> Timestamp {
        self.floor.max(e.mtime)
    }

    fn unsafe_path(&self, p: &RelPath, problem: &str) -> CheckpointError {
        CheckpointError::UnsafeRestore {
            target: self.target.to_owned(),
            path: p.escaped(),
            problem: problem.to_owned(),
        }
    }

    /// Records a directory's mode and mtime before its first change, and opens it up.
    fn touch(&mut self, d: &RelPath, fd: BorrowedFd<'_>) -> Result<()> {
        if self.dirs.contains_key(d) {
            return Ok(());
        }
        let fp = full(self.target, d);
        let st = fsops::fstat(fd).at("stat", &fp)?;
        let orig = (
            st.st_mode & 0o7777,
            Timestamp {
                sec: st.st_mtime,
                nsec: st.st_mtime_nsec as u32,
            },
        );
        make_writable(fd, &fp)?;
        self.dirs.insert(
            d.clone(),
            DirFix {
                orig: Some(orig),
                bump: false,
            },
        );
        Ok(())
    }

    /// Opens directory `d` of the target, one `O_NOFOLLOW` component at a time. A missing
    /// component is created (with `new`'s xattrs; mode and mtime when finishing) if
    /// `create`, else `None` is returned.
    fn open(&mut self, d: &RelPath, create: bool) -> Result<Option<OwnedFd>> {
        let mut fd = self.root.try_clone_to_owned().at("dup", self.target)?;
        let mut cur = RelPath::root();
        for comp in d.components() {
            let parent = cur.clone();
            cur = cur.join(comp)?;
            match fsops::open_dir_at(fd.as_fd(), comp) {
                Ok(f) => fd = f,
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    let entry = match self.new.get(&cur) {
                        Some(e) if e.is_dir() => e,
                        _ => {
                            return Err(
                                self.unsafe_path(&cur, "is not a directory of the new state")
                            )
                        }
                    };
                    let fp = full(self.target, &cur);
                    self.touch(&parent, fd.as_fd())?;
                    fsops::mkdir_at(fd.as_fd(), comp, 0o700).at("mkdir", &fp)?;
                    let f = fsops::open_dir_at(fd.as_fd(), comp).at("open dir", &fp)?;
                    sync_xattrs(
                        &File::from(f.try_clone().at("dup", &fp)?),
                        &entry.xattrs,
                        &fp,
                        true,
                    )?;
                    self.dirs.insert(
                        cur.clone(),
                        DirFix {
                            orig: None,
                            bump: true,
                        },
                    );
                    fd = f;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                    return Err(self
                        .unsafe_path(&cur, "is not a real directory (symlink or file in the way)"))
                }
                Err(e) => return Err(CheckpointError::io("open dir", full(self.target, &cur), e)),
            }
        }
        Ok(Some(fd))
    }

    fn remove(&mut self, p: &RelPath) -> Result<()> {
        let parent = p.parent().unwrap_or_default();
        let Some(pfd) = self.open(&parent, false)? else {
            return Ok(());
        };
        match fsops::lstat_at(pfd.as_fd(), name_of(p)) {
            Ok(_) => {
                self.touch(&parent, pfd.as_fd())?;
                remove_at(pfd.as_fd(), name_of(p), &full(self.target, p))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CheckpointError::io("stat", full(self.target, p), e)),
        }
    }

    fn put(
        &mut self,
        p: &RelPath,
        change: OverlayChange,
        src: &mut Cursor<'_>,
        new_dir: &Path,
        report: &mut OverlayReport,
    ) -> Result<()> {
        let new = self.new;
        let e = &new[p];
        let mtime = self.bumped(e);
        let fp = full(self.target, p);
        if p.is_root() {
            // Only a mode or xattr change is possible here (both roots are directories).
            let f = File::from(self.root.try_clone_to_owned().at("dup", self.target)?);
            sync_xattrs(&f, &e.xattrs, self.target, false)?;
            self.touch(p, self.root)?;
            self.mark(p);
            return Ok(());
        }
        let parent = p.parent().unwrap_or_default();
        let Some(pfd) = self.open(&parent, true)? else {
            return Err(self.unsafe_path(&parent, "could not be created"));
        };
        let pfd = pfd.as_fd();
        let name = name_of(p);
        let on_disk = match fsops::lstat_at(pfd, name) {
            Ok(st) => Some((fsops::file_type(&st), st.st_nlink)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(CheckpointError::io("stat", fp, err)),
        };

        // In place: a mode or xattr change on a file or symlink of the same kind, and any
        // directory that already exists (it keeps the build products inside it). The rest
        // (fifos too: `chmod_at` would follow a symlink swapped in) is created afresh.
        match (&e.kind, on_disk) {
            (EntryKind::Dir, Some((libc::S_IFDIR, _))) => {
                let d = fsops::open_dir_at(pfd, name).at("open dir", &fp)?;
                sync_xattrs(
                    &File::from(d.try_clone().at("dup", &fp)?),
                    &e.xattrs,
                    &fp,
                    false,
                )?;
                self.touch(p, d.as_fd())?;
                self.mark(p);
                return Ok(());
            }
            (EntryKind::File { .. }, Some((libc::S_IFREG, 1))) if change == OverlayChange::Mode => {
                let f = fsops::open_nofollow_at(pfd, name).at("open", &fp)?;
                sync_xattrs(&f, &e.xattrs, &fp, false)?;
                fsops::chmod_fd(f.as_fd(), e.mode).at("chmod", &fp)?;
                fsops::set_mtime_fd(f.as_fd(), mtime).at("set mtime of", &fp)?;
                return Ok(());
            }
            (EntryKind::Symlink { .. }, Some((libc::S_IFLNK, _)))
                if change == OverlayChange::Mode =>
            {
                // Symlinks have no mode of their own on Linux.
                fsops::set_mtime_at(pfd, name, mtime).at("set mtime of", &fp)?;
                return Ok(());
            }
            _ => {}
        }

        self.touch(&parent, pfd)?;
        if on_disk.is_some() {
            remove_at(pfd, name, &fp)?;
        }
        match &e.kind {
            EntryKind::Dir => {
                fsops::mkdir_at(pfd, name, 0o700).at("mkdir", &fp)?;
                if !e.xattrs.is_empty() {
                    let d = File::from(fsops::open_dir_at(pfd, name).at("open dir", &fp)?);
                    sync_xattrs(&d, &e.xattrs, &fp, true)?;
                }
                self.dirs.insert(
                    p.clone(),
                    DirFix {
                        orig: None,
                        bump: true,
                    },
                );
            }
            EntryKind::File { size, blake3, .. } => {
                let mut out = fsops::create_file_at(pfd, name, 0o600).at("create", &fp)?;
                let sdir = src.dir(&parent)?;
                let sp = new_dir.join(p.as_path());
                let mut input = fsops::open_nofollow_at(sdir, name).at("open", &sp)?;
                copy_checked(&mut input, &sp, &mut out, &fp, *size, blake3)?;
                sync_xattrs(&out, &e.xattrs, &fp, true)?;
                fsops::chmod_fd(out.as_fd(), e.mode).at("chmod", &fp)?;
                fsops::set_mtime_fd(out.as_fd(), mtime).at("set mtime of", &fp)?;
            }
            EntryKind::Symlink { target: t } => {
                fsops::symlink_at(t, pfd, name).at("symlink", &fp)?;
                fsops::set_mtime_at(pfd, name, mtime).at("set mtime of", &fp)?;
            }
            EntryKind::Fifo => {
                fsops::mkfifo_at(pfd, name, 0o600).at("mkfifo", &fp)?;
                fsops::chmod_at(pfd, name, e.mode).at("chmod", &fp)?;
                fsops::set_mtime_at(pfd, name, mtime).at("set mtime of", &fp)?;
            }
            EntryKind::Socket | EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. } => {
                report.skipped.push((p.clone(), e.kind.name()));
            }
        }
        Ok(())
    }

    /// Marks a directory as changed: it gets `new`'s mode and the bumped mtime.
    fn mark(&mut self, d: &RelPath) {
        if let Some(r) = self.dirs.get_mut(d) {
            r.bump = true;
        }
    }

    /// Sets the final mode and mtime of every directory touched, deepest first.
    fn finish(mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        for (d, fix) in dirs.iter().rev() {
            // A directory touched only to remove things from it, and then removed or
            // replaced itself, has nothing left to finish.
            let Some(e) = self.new.get(d).filter(|e| e.is_dir()) else {
                continue;
            };
            let (mode, mtime) = match fix.orig {
                Some(orig) if !fix.bump => orig,
                _ => (e.mode, self.bumped(e)),
            };
            let fp = full(self.target, d);
            let fd = self
                .open(d, false)?
                .ok_or_else(|| self.unsafe_path(d, "disappeared during the overlay"))?;
            fsops::chmod_fd(fd.as_fd(), mode).at("chmod", &fp)?;
            fsops::set_mtime_fd(fd.as_fd(), mtime).at("set mtime of", &fp)?;
        }
        Ok(())
    }
}

/// Copies `size` bytes from `input` to `out`, checking the content against `hash`.
fn copy_checked(
    input: &mut File,
    in_path: &Path,
    out: &mut File,
    out_path: &Path,
    size: u64,
    hash: &ContentHash,
) -> Result<()> {
    let changed = || CheckpointError::SourceChanged {
        path: in_path.to_owned(),
    };
    let m = input.metadata().at("stat", in_path)?;
    if !m.file_type().is_file() || m.len() != size {
        return Err(changed());
    }
    let mut hasher = blake3::Hasher::new();
    let total = read_in_chunks(input, in_path, &mut |c| {
        hasher.update(c);
        out.write_all(c).at("write", out_path)
    })?;
    if total != size || ContentHash::from(hasher.finalize()) != *hash {
        return Err(changed());
    }
    Ok(())
}

/// The state [`overlay_changes`] would leave in a tree restored to `restored` (a state the
/// build that recorded `old` reached later), computed without touching any file: the same
/// rules, as a state. The caller then brings a live tree to it in place
/// ([`super::CheckpointWriter::apply_state_over`]), writing only what differs, instead of
/// restoring `restored` whole and laying the changes over it.
///
/// Entries taken from `new` get no hardlink group (the overlay writes copies); groups of
/// `restored` that lose members are re-led by their smallest remaining path, or dissolved.
/// Sockets and devices are left out, as the overlay skips them (listed in `skipped`).
pub fn overlay_state(
    old: &RootState,
    new: &RootState,
    restored: &RootState,
    min_mtime: Timestamp,
) -> Result<(RootState, OverlayReport)> {
    let unsafe_path = |p: &RelPath, problem: &str| CheckpointError::UnsafeRestore {
        target: Path::new("(incremental tree)").to_owned(),
        path: p.escaped(),
        problem: problem.to_owned(),
    };
    let root = RelPath::root();
    let all_dirs = [old, new, restored]
        .iter()
        .all(|s| s.get(&root).is_some_and(Entry::is_dir));
    if !all_dirs {
        return Err(unsafe_path(
            &root,
            "an overlay needs all three states to be directories",
        ));
    }
    let floor = floor_after(min_mtime);
    let bumped = |e: &Entry| floor.max(e.mtime);
    let (changes, mut report) = counted_changes(old, new);
    let mut out = restored.clone();
    let remove_tree = |out: &mut RootState, p: &RelPath| {
        out.retain(|k, _| !k.starts_with(p));
    };
    // Paths whose entry now comes from `new` (their old hardlink group no longer holds).
    let mut replaced: BTreeSet<RelPath> = BTreeSet::new();

    for (p, c) in changes.iter().rev() {
        if *c == OverlayChange::Removed {
            remove_tree(&mut out, p);
        }
    }
    for (p, c) in &changes {
        if *c == OverlayChange::Removed {
            continue;
        }
        let e = &new[p];
        if p.is_root() {
            let r = out.get_mut(p).expect("checked above");
            r.mode = e.mode;
            r.xattrs = e.xattrs.clone();
            r.mtime = bumped(e);
            continue;
        }
        // Missing directories on the way are created from `new`, with the bumped mtime.
        let mut cur = RelPath::root();
        let parent = p.parent().unwrap_or_default();
        for comp in parent.components() {
            cur = cur.join(comp)?;
            match out.get(&cur) {
                Some(d) if d.is_dir() => {}
                Some(_) => {
                    return Err(unsafe_path(
                        &cur,
                        "is not a real directory (symlink or file in the way)",
                    ))
                }
                None => match new.get(&cur) {
                    Some(d) if d.is_dir() => {
                        let mut d = d.clone();
                        d.mtime = bumped(&d);
                        out.insert(cur.clone(), d);
                    }
                    _ => return Err(unsafe_path(&cur, "is not a directory of the new state")),
                },
            }
        }
        let current = out.get(p);
        let in_place = match (&e.kind, current.map(|x| &x.kind)) {
            (EntryKind::Dir, Some(EntryKind::Dir)) => true,
            (EntryKind::File { .. }, Some(EntryKind::File { hardlink: None, .. })) => {
                *c == OverlayChange::Mode
            }
            (EntryKind::Symlink { .. }, Some(EntryKind::Symlink { .. })) => {
                *c == OverlayChange::Mode
            }
            _ => false,
        };
        if in_place {
            let x = out.get_mut(p).expect("present");
            match e.kind {
                // Symlinks have no mode of their own: only the mtime moves.
                EntryKind::Symlink { .. } => {}
                _ => {
                    x.mode = e.mode;
                    x.xattrs = e.xattrs.clone();
                }
            }
            x.mtime = bumped(e);
            continue;
        }
        if current.is_some() {
            remove_tree(&mut out, p);
        }
        replaced.insert(p.clone());
        match &e.kind {
            EntryKind::Socket | EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. } => {
                report.skipped.push((p.clone(), e.kind.name()));
            }
            kind => {
                let mut x = e.clone();
                if let EntryKind::File { size, blake3, .. } = kind {
                    x.kind = EntryKind::File {
                        size: *size,
                        blake3: *blake3,
                        hardlink: None,
                    };
                }
                x.mtime = bumped(e);
                out.insert(p.clone(), x);
            }
        }
    }
    // Directories whose list of entries changed get `new`'s mode and the bumped mtime.
    let relisted = relisted_dirs(&changes, new);
    for d in &relisted {
        if let Some(x) = out.get_mut(d).filter(|x| x.is_dir()) {
            x.mode = new[d].mode;
            x.mtime = bumped(&new[d]);
        }
    }
    regroup_hardlinks(&mut out, &replaced);
    check_root_state(&out).map_err(|(p, problem)| unsafe_path(&p, &problem))?;
    report.changes = changes;
    Ok((out, report))
}

/// Re-leads hardlink groups after some members left (`replaced` paths, or removed ones):
/// the smallest remaining member leads; a group of one is no group.
fn regroup_hardlinks(st: &mut RootState, replaced: &BTreeSet<RelPath>) {
    let mut groups: BTreeMap<RelPath, Vec<RelPath>> = BTreeMap::new();
    for (p, e) in st.iter() {
        if let EntryKind::File {
            hardlink: Some(lead),
            ..
        } = &e.kind
        {
            if !replaced.contains(p) {
                groups.entry(lead.clone()).or_default().push(p.clone());
            }
        }
    }
    for members in groups.into_values() {
        let lead = if members.len() > 1 {
            members.first().cloned()
        } else {
            None
        };
        for m in members {
            if let Some(EntryKind::File { hardlink, .. }) = st.get_mut(&m).map(|e| &mut e.kind) {
                *hardlink = lead.clone();
            }
        }
    }
}
