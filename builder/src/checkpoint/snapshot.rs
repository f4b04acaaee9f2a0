//! Snapshotting: walks the roots, diffs against the previous layer's state, hashes only
//! files whose stat changed (in parallel), stores new blobs (from a base checkpoint's when it
//! holds them, [`PriorTrees`], or as deltas of what their path held before, [`Prior`]) and
//! writes the layer. Owns the stat cache; does not decide what a layer means (the caller's
//! metadata says that).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::blobs::{hash_file, BlobStore, Holding, Prior};
use super::error::{CheckpointError, IoResultExt, Result};
use super::manifest::{
    check_root_name, ContentHash, Entry, EntryKind, Layer, LayerMeta, LayerRef, Timestamp, Xattrs,
};
use super::parallel::{all_cores, run_parallel, run_parallel_widening, Gate};
use super::path::RelPath;
use super::state::{check_root_state, diff_root, RootState, State};
use super::store::{Checkpoint, CheckpointWriter};

/// The stat fields that, when all unchanged, let a file's previous hash be reused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct StatKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    mode: u32,
}

impl StatKey {
    fn of(m: &fs::Metadata) -> Self {
        StatKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            mode: m.mode(),
        }
    }
}

#[derive(Clone, Debug)]
struct CacheEntry {
    key: StatKey,
    hash: ContentHash,
    xattrs: Xattrs,
}

#[derive(Clone, Debug)]
struct RootSpec {
    name: String,
    dir: PathBuf,
    exclude: Vec<RelPath>,
}

/// Per-root counts of one snapshot.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct RootSummary {
    /// Entries in the new state.
    pub entries: usize,
    /// Entries added or changed.
    pub changed: usize,
    /// Paths deleted.
    pub deleted: usize,
}

/// What one call to [`Snapshotter::snapshot`] did.
#[derive(Clone, Debug)]
pub struct LayerSummary {
    /// What the index now says about the layer.
    pub layer: LayerRef,
    /// Counts by root.
    pub roots: BTreeMap<String, RootSummary>,
    /// Files read and hashed (their stat changed or they were new).
    pub files_hashed: u64,
    /// Bytes read for hashing.
    pub bytes_hashed: u64,
    /// Files whose previous hash was reused because their stat was unchanged.
    pub files_reused: u64,
}

/// Takes successive snapshots of a fixed set of named roots into one checkpoint.
#[derive(Debug)]
pub struct Snapshotter {
    roots: Vec<RootSpec>,
    threads: usize,
    state: State,
    cache: BTreeMap<String, HashMap<RelPath, CacheEntry>>,
    layers_recorded: u32,
    /// The state is what the last snapshot's walk saw (not adopted or trusted from a
    /// restore): [`Snapshotter::snapshot_unchanged`] may record it again.
    walked: bool,
    /// An earlier checkpoint new contents may be stored from ([`Snapshotter::store_against`]).
    prior: Option<PriorTrees>,
}

/// The last trees of an earlier checkpoint (the base of this build), whose blobs a snapshot
/// may store a new content from: copied when one is the same content, or a patch or a delta
/// of the one the same path held ([`Prior`]). Read as untrusted input: each blob is checked
/// as it is read, and one that fails is not used.
#[derive(Debug)]
pub struct PriorTrees {
    store: BlobStore,
    state: State,
}

impl PriorTrees {
    /// The trees after the last layer of `checkpoint`.
    pub fn of(checkpoint: &Checkpoint) -> Result<Self> {
        let state = match checkpoint.layers().len() {
            0 => State::default(),
            n => checkpoint.state_after(n as u32 - 1)?,
        };
        Ok(PriorTrees {
            store: checkpoint.blobs().clone(),
            state,
        })
    }

    /// Its blobs, and the content `path` of `root` held there.
    fn for_file(
        &self,
        root: &RootState,
        path: &RelPath,
    ) -> (&BlobStore, Option<(ContentHash, u64)>) {
        (&self.store, file_content(root, path))
    }
}

/// The content and size of the regular file at `path` of `root`, if it is one.
fn file_content(root: &RootState, path: &RelPath) -> Option<(ContentHash, u64)> {
    root.get(path).and_then(|e| match &e.kind {
        EntryKind::File { size, blake3, .. } => Some((*blake3, *size)),
        _ => None,
    })
}

struct Scanned {
    path: RelPath,
    full: PathBuf,
    meta: fs::Metadata,
    target: Option<Vec<u8>>,
    xattrs: Xattrs,
}

fn read_xattrs(path: &Path) -> Result<Xattrs> {
    let mut out = BTreeMap::new();
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
        Err(e) => return Err(CheckpointError::io("list xattrs of", path, e)),
    };
    for name in names {
        let bytes = name.as_bytes();
        if !bytes.starts_with(b"user.") {
            continue;
        }
        match xattr::get(path, &name) {
            Ok(Some(v)) => {
                out.insert(bytes.to_vec(), v);
            }
            Ok(None) => {}
            Err(e) => return Err(CheckpointError::io("read xattr of", path, e)),
        }
    }
    Ok(out)
}

fn walk(spec: &RootSpec) -> Result<Vec<Scanned>> {
    let mut out = Vec::new();
    let meta = match fs::symlink_metadata(&spec.dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(CheckpointError::io("stat", &spec.dir, e)),
    };
    let mut stack = Vec::new();
    let root = scan_one(RelPath::root(), spec.dir.clone(), meta)?;
    if root.meta.is_dir() {
        stack.push((RelPath::root(), spec.dir.clone()));
    }
    out.push(root);
    while let Some((rel, full)) = stack.pop() {
        for de in fs::read_dir(&full).at("read dir", &full)? {
            let de = de.at("read dir", &full)?;
            let name = de.file_name();
            let child = rel.join(name.as_bytes())?;
            if spec.exclude.iter().any(|ex| child.starts_with(ex)) {
                continue;
            }
            let child_full = de.path();
            // Relative to the open directory (statx on its descriptor, never following a
            // symlink): no lookup of the whole path again for every entry.
            let m = de.metadata().at("stat", &child_full)?;
            let s = scan_one(child, child_full, m)?;
            if s.meta.is_dir() {
                stack.push((s.path.clone(), s.full.clone()));
            }
            out.push(s);
        }
    }
    Ok(out)
}

fn scan_one(path: RelPath, full: PathBuf, meta: fs::Metadata) -> Result<Scanned> {
    let ft = meta.file_type();
    let target = if ft.is_symlink() {
        Some(
            fs::read_link(&full)
                .at("read link", &full)?
                .as_os_str()
                .as_bytes()
                .to_vec(),
        )
    } else {
        None
    };
    // File xattrs are read later, only for files whose stat changed.
    let xattrs = if ft.is_dir() {
        read_xattrs(&full)?
    } else {
        BTreeMap::new()
    };
    Ok(Scanned {
        path,
        full,
        meta,
        target,
        xattrs,
    })
}

fn timestamp(sec: i64, nsec: i64) -> Timestamp {
    Timestamp {
        sec,
        nsec: nsec as u32,
    }
}

/// Turns a scan plus the hash and xattrs of every regular file (by scan position) into a
/// root state, finding hardlink groups; `on_file` sees every regular file's entry data.
fn build_root_state(
    scanned: Vec<Scanned>,
    mut file_hash: Vec<Option<(ContentHash, Xattrs)>>,
    mut on_file: impl FnMut(&RelPath, &fs::Metadata, ContentHash, &Xattrs),
) -> Result<RootState> {
    // Hardlink groups: inodes with several paths inside this root.
    let mut groups: HashMap<(u64, u64), RelPath> = HashMap::new();
    let mut group_count: HashMap<(u64, u64), usize> = HashMap::new();
    for s in &scanned {
        if s.meta.file_type().is_file() && s.meta.nlink() > 1 {
            let k = (s.meta.dev(), s.meta.ino());
            *group_count.entry(k).or_default() += 1;
            let g = groups.entry(k).or_insert_with(|| s.path.clone());
            if s.path < *g {
                *g = s.path.clone();
            }
        }
    }

    let mut root_state = RootState::new();
    for (i, s) in scanned.into_iter().enumerate() {
        let m = &s.meta;
        let ft = m.file_type();
        let mut xattrs = s.xattrs;
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_file() {
            let (hash, xa) =
                file_hash[i]
                    .take()
                    .ok_or_else(|| CheckpointError::ChangedDuringSnapshot {
                        path: s.full.clone(),
                    })?;
            on_file(&s.path, m, hash, &xa);
            xattrs = xa;
            let k = (m.dev(), m.ino());
            let hardlink = if group_count.get(&k).copied().unwrap_or(0) > 1 {
                groups.get(&k).cloned()
            } else {
                None
            };
            EntryKind::File {
                size: m.size(),
                blake3: hash,
                hardlink,
            }
        } else if ft.is_symlink() {
            EntryKind::Symlink {
                target: s.target.unwrap_or_default(),
            }
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else if ft.is_socket() {
            EntryKind::Socket
        } else if ft.is_char_device() {
            EntryKind::CharDevice { rdev: m.rdev() }
        } else {
            EntryKind::BlockDevice { rdev: m.rdev() }
        };
        root_state.insert(
            s.path,
            Entry {
                kind,
                mode: m.mode() & 0o7777,
                mtime: timestamp(m.mtime(), m.mtime_nsec()),
                xattrs,
            },
        );
    }
    Ok(root_state)
}

/// The state of the tree at `path` as a snapshot would record it (`exclude` as in
/// [`Snapshotter::exclude`]), without writing anything: every regular file is read once per
/// inode and hashed, in parallel. An absent `path` gives the empty state.
pub fn scan_root(path: &Path, exclude: &[RelPath]) -> Result<RootState> {
    if exclude.iter().any(RelPath::is_root) {
        return Err(CheckpointError::InvalidPath {
            path: String::new(),
            reason: "cannot exclude a whole root",
        });
    }
    let spec = RootSpec {
        name: String::new(),
        dir: path.to_owned(),
        exclude: exclude.to_vec(),
    };
    let scanned = walk(&spec)?;
    let mut jobs: Vec<usize> = Vec::new();
    let mut job_of: Vec<Option<usize>> = vec![None; scanned.len()];
    let mut job_of_inode: HashMap<(u64, u64), usize> = HashMap::new();
    for (i, s) in scanned.iter().enumerate() {
        if s.meta.file_type().is_file() {
            let job = *job_of_inode
                .entry((s.meta.dev(), s.meta.ino()))
                .or_insert_with(|| {
                    jobs.push(i);
                    jobs.len() - 1
                });
            job_of[i] = Some(job);
        }
    }
    let threads = all_cores();
    let results = run_parallel(&jobs, threads, |&i| {
        let s = &scanned[i];
        let got = hash_file(&s.full)?;
        if StatKey::of(&got.metadata) != StatKey::of(&s.meta) {
            return Err(CheckpointError::ChangedDuringSnapshot {
                path: s.full.clone(),
            });
        }
        Ok((got.hash, read_xattrs(&s.full)?))
    })?;
    let file_hash = job_of
        .iter()
        .map(|j| j.map(|j| results[j].clone()))
        .collect();
    let st = build_root_state(scanned, file_hash, |_, _, _, _| {})?;
    check_root_state(&st).map_err(|(p, problem)| CheckpointError::UnsafeRestore {
        target: path.to_owned(),
        path: p.escaped(),
        problem,
    })?;
    Ok(st)
}

impl Snapshotter {
    /// A snapshotter for named roots (`("build", build_dir)`, `("out", $out)`, ...). Roots
    /// that do not exist yet are recorded as absent until they appear.
    pub fn new(roots: Vec<(String, PathBuf)>) -> Result<Self> {
        let mut specs: Vec<RootSpec> = Vec::new();
        for (name, dir) in roots {
            check_root_name(&name)?;
            if specs.iter().any(|s| s.name == name) {
                return Err(CheckpointError::InvalidRootName {
                    root: name,
                    reason: "root named twice",
                });
            }
            specs.push(RootSpec {
                name,
                dir,
                exclude: Vec::new(),
            });
        }
        let threads = all_cores();
        Ok(Snapshotter {
            roots: specs,
            threads,
            state: State::default(),
            cache: BTreeMap::new(),
            layers_recorded: 0,
            walked: false,
            prior: None,
        })
    }

    /// From now on, new contents may be stored from `prior`'s blobs (see [`PriorTrees`]).
    pub fn store_against(&mut self, prior: Option<PriorTrees>) {
        self.prior = prior;
    }

    /// Leaves `path` (and everything below it) of `root` out of every snapshot.
    pub fn exclude(&mut self, root: &str, path: RelPath) -> Result<()> {
        if path.is_root() {
            return Err(CheckpointError::InvalidPath {
                path: String::new(),
                reason: "cannot exclude a whole root",
            });
        }
        let spec = self
            .roots
            .iter_mut()
            .find(|s| s.name == root)
            .ok_or_else(|| CheckpointError::NoSuchRoot {
                root: root.to_owned(),
            })?;
        spec.exclude.push(path);
        Ok(())
    }

    /// Sets the number of hashing threads (at least 1).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// The number of hashing threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The state recorded by the last snapshot (or adopted).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Continues from a state that was just restored onto disk from layers already copied
    /// into the writer (see `CheckpointWriter::import_layer`): the next snapshot diffs
    /// against `state`, and files whose size, mode and mtime on disk match their entry are
    /// trusted to have the entry's content, so they are not rehashed. The trees must have
    /// been restored from the checkpoint `state` comes from: after
    /// `CheckpointWriter::import_layers_rewritten`, the new one (rewritten files keep the
    /// size and mtime of the originals, so a tree restored from the old checkpoint would
    /// pass for the rewritten one).
    pub fn adopt(&mut self, state: State, layers_recorded: u32) -> Result<()> {
        self.walked = false;
        self.cache.clear();
        self.trust(&state);
        self.state = state;
        self.layers_recorded = layers_recorded;
        Ok(())
    }

    /// Trusts that the files of `state` whose size, mode and mtime on disk match their entry
    /// have the entry's content (they were just written or kept by a restore that knew it),
    /// so the next snapshot does not rehash them; the state the next layer is diffed
    /// against does not change.
    pub fn trust(&mut self, state: &State) {
        self.walked = false;
        for spec in &self.roots {
            let cache = self.cache.entry(spec.name.clone()).or_default();
            for (path, e) in state.root(&spec.name) {
                let EntryKind::File { size, blake3, .. } = &e.kind else {
                    continue;
                };
                let full = if path.is_root() {
                    spec.dir.clone()
                } else {
                    spec.dir.join(path.as_path())
                };
                let Ok(m) = fs::symlink_metadata(&full) else {
                    continue;
                };
                if m.file_type().is_file()
                    && m.size() == *size
                    && m.mode() & 0o7777 == e.mode
                    && timestamp(m.mtime(), m.mtime_nsec()) == e.mtime
                {
                    cache.insert(
                        path.clone(),
                        CacheEntry {
                            key: StatKey::of(&m),
                            hash: *blake3,
                            xattrs: e.xattrs.clone(),
                        },
                    );
                }
            }
        }
    }

    /// The index of the next layer, which `writer` must be about to write (it has as many
    /// layers as this snapshotter recorded); declares the roots to it.
    fn next_layer(&self, writer: &mut CheckpointWriter) -> Result<u32> {
        if writer.layer_count() != self.layers_recorded {
            return Err(CheckpointError::OutOfSync {
                snapshotter: self.layers_recorded,
                writer: writer.layer_count(),
            });
        }
        writer.add_roots(self.roots.iter().map(|s| s.name.clone()))?;
        Ok(writer.layer_count())
    }

    /// Records the next layer as the last one's trees unchanged, without walking the roots:
    /// for a caller that knows nothing can have touched them since the last snapshot walked
    /// them (no process ran, none was left running). The layer is the one a walk would
    /// write then. After a restore ([`Snapshotter::adopt`], [`Snapshotter::trust`]) it
    /// walks, as [`Snapshotter::snapshot`] does.
    pub fn snapshot_unchanged(
        &mut self,
        writer: &mut CheckpointWriter,
        meta: LayerMeta,
    ) -> Result<LayerSummary> {
        if !self.walked {
            return self.snapshot(writer, meta);
        }
        let index = self.next_layer(writer)?;
        let summaries = self
            .roots
            .iter()
            .map(|spec| {
                let entries = self.state.root(&spec.name).len();
                (
                    spec.name.clone(),
                    RootSummary {
                        entries,
                        changed: 0,
                        deleted: 0,
                    },
                )
            })
            .collect();
        let files_reused = self
            .state
            .roots
            .values()
            .flat_map(|r| r.values())
            .filter(|e| e.blob().is_some())
            .count() as u64;
        let layer = Layer {
            index,
            meta,
            roots: BTreeMap::new(),
            blobs: Vec::new(),
        };
        let layer_ref = writer.write_layer(&layer)?;
        self.layers_recorded = index + 1;
        Ok(LayerSummary {
            layer: layer_ref,
            roots: summaries,
            files_hashed: 0,
            bytes_hashed: 0,
            files_reused,
        })
    }

    /// Records the current content of every root as the next layer of `writer`: the diff
    /// against the previous snapshot, with new contents stored as blobs.
    pub fn snapshot(
        &mut self,
        writer: &mut CheckpointWriter,
        meta: LayerMeta,
    ) -> Result<LayerSummary> {
        let read = self.read_layer(writer, meta, &Holding::none())?;
        let threads = self.threads;
        self.store_layer(writer, read, threads, None)
    }

    /// The first part of [`Snapshotter::snapshot`], the part that must see the roots: walks
    /// them and reads what changed. New contents that `holding` has room for are held in
    /// memory, the rest stored. The roots may change as soon as it returns; nothing else
    /// may use `writer` or this snapshotter until [`Snapshotter::store_layer`] has written
    /// the layer.
    pub fn read_layer(
        &mut self,
        writer: &mut CheckpointWriter,
        meta: LayerMeta,
        holding: &Holding,
    ) -> Result<ReadLayer> {
        let index = self.next_layer(writer)?;
        let mut new_state = State::default();
        let mut new_cache = BTreeMap::new();
        let mut diffs = BTreeMap::new();
        let mut summaries = BTreeMap::new();
        let mut held = Vec::new();
        let (mut files_hashed, mut bytes_hashed, mut files_reused) = (0, 0, 0);
        for spec in &self.roots {
            let scanned = walk(spec)?;
            let old_cache = self.cache.remove(&spec.name).unwrap_or_default();
            let mut cache = HashMap::new();
            // Files to (re)hash, one job per inode.
            let mut jobs: Vec<usize> = Vec::new();
            let mut job_of_inode: HashMap<(u64, u64), usize> = HashMap::new();
            let mut file_hash: Vec<Option<(ContentHash, Xattrs)>> =
                Vec::with_capacity(scanned.len());
            let mut pending: Vec<Option<usize>> = vec![None; scanned.len()];
            for (i, s) in scanned.iter().enumerate() {
                file_hash.push(None);
                if !s.meta.file_type().is_file() {
                    continue;
                }
                let key = StatKey::of(&s.meta);
                match old_cache.get(&s.path) {
                    Some(c) if c.key == key && writer.blobs().contains(&c.hash) => {
                        file_hash[i] = Some((c.hash, c.xattrs.clone()));
                        files_reused += 1;
                    }
                    _ => {
                        let job = *job_of_inode.entry((key.dev, key.ino)).or_insert_with(|| {
                            jobs.push(i);
                            jobs.len() - 1
                        });
                        pending[i] = Some(job);
                    }
                }
            }
            let blobs = writer.blobs();
            let prior = self.prior.as_ref().map(|p| (p, p.state.root(&spec.name)));
            let previous = self.state.root(&spec.name);
            let results = run_parallel(&jobs, self.threads, |&i| {
                let s = &scanned[i];
                let here = file_content(previous, &s.path);
                let prior = Prior {
                    base: prior.map(|(p, root)| p.for_file(root, &s.path)),
                    here,
                };
                let read = blobs.read_file_with(&s.full, Some(prior), holding)?;
                if StatKey::of(&read.metadata) != StatKey::of(&s.meta) {
                    return Err(CheckpointError::ChangedDuringSnapshot {
                        path: s.full.clone(),
                    });
                }
                let content = read.held.map(|content| HeldContent {
                    root: spec.name.clone(),
                    path: s.path.clone(),
                    here,
                    hash: read.hash,
                    content,
                });
                Ok((read.hash, read_xattrs(&s.full)?, content))
            })?;
            for &i in &jobs {
                files_hashed += 1;
                bytes_hashed += scanned[i].meta.size();
            }
            for (i, job) in pending.iter().enumerate() {
                if let Some(j) = job {
                    let (hash, xattrs, _) = &results[*j];
                    file_hash[i] = Some((*hash, xattrs.clone()));
                }
            }
            held.extend(results.into_iter().filter_map(|(_, _, content)| content));

            let root_state = build_root_state(scanned, file_hash, |path, m, hash, xattrs| {
                cache.insert(
                    path.clone(),
                    CacheEntry {
                        key: StatKey::of(m),
                        hash,
                        xattrs: xattrs.clone(),
                    },
                );
            })?;
            check_root_state(&root_state).map_err(|(path, problem)| CheckpointError::Manifest {
                layer: index,
                root: spec.name.clone(),
                path: path.escaped(),
                problem,
            })?;
            let diff = diff_root(self.state.root(&spec.name), &root_state);
            summaries.insert(
                spec.name.clone(),
                RootSummary {
                    entries: root_state.len(),
                    changed: diff.changed.len(),
                    deleted: diff.deleted.len(),
                },
            );
            if !diff.is_empty() {
                diffs.insert(spec.name.clone(), diff);
            }
            new_state.roots.insert(spec.name.clone(), root_state);
            new_cache.insert(spec.name.clone(), cache);
        }
        self.state = new_state;
        self.cache = new_cache;
        self.layers_recorded = index + 1;
        self.walked = true;
        Ok(ReadLayer {
            layer: Layer {
                index,
                meta,
                roots: diffs,
                blobs: Vec::new(),
            },
            held,
            roots: summaries,
            files_hashed,
            bytes_hashed,
            files_reused,
        })
    }

    /// The rest of [`Snapshotter::snapshot`] after [`Snapshotter::read_layer`]: stores the
    /// contents it held, on up to `threads` threads (with `widen = Some((more, gate))`, on
    /// `more` once `gate` opens), then writes the layer.
    pub fn store_layer(
        &mut self,
        writer: &mut CheckpointWriter,
        read: ReadLayer,
        threads: usize,
        widen: Option<(usize, &Gate)>,
    ) -> Result<LayerSummary> {
        let ReadLayer {
            layer,
            held,
            roots,
            files_hashed,
            bytes_hashed,
            files_reused,
        } = read;
        let blobs = writer.blobs();
        run_parallel_widening(&held, threads, widen, |h| {
            let prior = Prior {
                base: self
                    .prior
                    .as_ref()
                    .map(|p| p.for_file(p.state.root(&h.root), &h.path)),
                here: h.here,
            };
            blobs.put_held(h.hash, &h.content, Some(prior))
        })?;
        drop(held);
        let layer_ref = writer.write_layer(&layer)?;
        Ok(LayerSummary {
            layer: layer_ref,
            roots,
            files_hashed,
            bytes_hashed,
            files_reused,
        })
    }
}

/// A layer [`Snapshotter::read_layer`] read and [`Snapshotter::store_layer`] has yet to
/// write, with the new contents it holds.
#[derive(Debug)]
pub struct ReadLayer {
    layer: Layer,
    held: Vec<HeldContent>,
    roots: BTreeMap<String, RootSummary>,
    files_hashed: u64,
    bytes_hashed: u64,
    files_reused: u64,
}

impl ReadLayer {
    /// Bytes of new contents held in memory, still to store.
    pub fn held_bytes(&self) -> u64 {
        self.held.iter().map(|h| h.content.len() as u64).sum()
    }
}

/// A new content read for a layer and held to store later, with what its path held before.
#[derive(Debug)]
struct HeldContent {
    root: String,
    path: RelPath,
    here: Option<(ContentHash, u64)>,
    hash: ContentHash,
    content: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::testutil::TempDir;

    #[test]
    fn unchanged_stat_is_not_rehashed_and_diffs_are_minimal() {
        let t = TempDir::new("snap");
        let root = t.path().join("b");
        fs::create_dir_all(root.join("d")).unwrap();
        fs::write(root.join("d/a"), b"a").unwrap();
        fs::write(root.join("b"), b"b").unwrap();
        fs::create_dir_all(root.join("skip/me")).unwrap();
        let mut w = CheckpointWriter::create(&t.path().join("ck")).unwrap();
        let mut s = Snapshotter::new(vec![
            ("build".into(), root.clone()),
            ("out".into(), t.path().join("out")),
        ])
        .unwrap();
        s.exclude("build", RelPath::new("skip").unwrap()).unwrap();
        let l0 = s.snapshot(&mut w, LayerMeta::default()).unwrap();
        assert_eq!(l0.files_hashed, 2);
        assert_eq!(l0.roots["build"].entries, 4);
        assert_eq!(l0.roots["out"].entries, 0);

        let l1 = s.snapshot(&mut w, LayerMeta::default()).unwrap();
        assert_eq!((l1.files_hashed, l1.files_reused), (0, 2));
        assert_eq!(l1.roots["build"].changed, 0);
        assert_eq!(l1.layer.blobs_added, 0);

        fs::write(root.join("b"), b"B").unwrap();
        fs::remove_file(root.join("d/a")).unwrap();
        fs::create_dir(t.path().join("out")).unwrap();
        let l2 = s.snapshot(&mut w, LayerMeta::default()).unwrap();
        assert_eq!(l2.files_hashed, 1);
        assert_eq!(l2.roots["build"].deleted, 1);
        // b changed, d's mtime changed, and the root's mtime may have.
        assert!(l2.roots["build"].changed >= 2);
        assert_eq!(l2.roots["out"].changed, 1);

        // Unchanged and not walked: the same layer a walk writes.
        let meta = || LayerMeta {
            name: "walked".into(),
            ..LayerMeta::default()
        };
        let walked = s.snapshot(&mut w, meta()).unwrap();
        let skipped = s.snapshot_unchanged(&mut w, meta()).unwrap();
        assert_eq!(walked.roots, skipped.roots);
        assert_eq!((skipped.files_hashed, skipped.files_reused), (0, 1));
        let layer_bytes = |r: &LayerRef| {
            fs::read(w.dir().join(crate::checkpoint::manifest::layer_file_name(
                r.index, &r.name,
            )))
            .unwrap()
        };
        let (a, b) = (layer_bytes(&walked.layer), layer_bytes(&skipped.layer));
        // Only the index differs (it is in the bytes).
        assert_eq!(
            String::from_utf8(a).unwrap().replacen("\"index\":3", "", 1),
            String::from_utf8(b).unwrap().replacen("\"index\":4", "", 1)
        );
        // After an adoption it walks: a change made meanwhile is seen.
        let state = s.state().clone();
        s.adopt(state, 5).unwrap();
        fs::write(root.join("b"), b"BB").unwrap();
        let l = s.snapshot_unchanged(&mut w, LayerMeta::default()).unwrap();
        assert_eq!(l.files_hashed, 1);

        let mut other = CheckpointWriter::create(&t.path().join("ck2")).unwrap();
        assert!(matches!(
            s.snapshot(&mut other, LayerMeta::default()),
            Err(CheckpointError::OutOfSync { .. })
        ));
        w.finish().unwrap();
    }

    #[test]
    fn a_layer_stored_after_its_files_changed_holds_what_was_read() {
        use crate::checkpoint::blobs::STREAM_THRESHOLD;
        let t = TempDir::new("held");
        let root = t.path().join("b");
        fs::create_dir_all(&root).unwrap();
        let small = b"a small content".to_vec();
        let large: Vec<u8> = (0..STREAM_THRESHOLD as usize + 4096)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let write_both = |fill: Option<u8>| {
            for (name, bytes) in [("small", &small), ("large", &large)] {
                let bytes = match fill {
                    Some(b) => vec![b; bytes.len()],
                    None => bytes.clone(),
                };
                fs::write(root.join(name), bytes).unwrap();
            }
        };
        let layer_file = |dir: &Path, r: &LayerRef| {
            fs::read(dir.join(crate::checkpoint::manifest::layer_file_name(
                r.index, &r.name,
            )))
            .unwrap()
        };
        let snapshotter = || Snapshotter::new(vec![("build".into(), root.clone())]).unwrap();

        write_both(None);
        let at_once_dir = t.path().join("at-once");
        let mut w = CheckpointWriter::create(&at_once_dir).unwrap();
        let at_once = snapshotter()
            .snapshot(&mut w, LayerMeta::default())
            .unwrap();
        w.finish().unwrap();

        // Read, then both files overwritten in place before the layer is stored.
        let held_dir = t.path().join("held");
        let mut w = CheckpointWriter::create(&held_dir).unwrap();
        let mut s = snapshotter();
        let read = s
            .read_layer(&mut w, LayerMeta::default(), &Holding::up_to(u64::MAX))
            .unwrap();
        assert_eq!(read.held_bytes(), (small.len() + large.len()) as u64);
        write_both(Some(b'x'));
        let held = s.store_layer(&mut w, read, 2, None).unwrap();
        w.finish().unwrap();
        assert_eq!(
            layer_file(&at_once_dir, &at_once.layer),
            layer_file(&held_dir, &held.layer)
        );
        let written = Checkpoint::open(&held_dir).unwrap();
        assert_eq!(
            written.blobs().read(&ContentHash::of(&large)).unwrap(),
            large
        );
        assert_eq!(
            written.blobs().read(&ContentHash::of(&small)).unwrap(),
            small
        );

        // Room for the small content only: the large one is stored as it is read.
        write_both(None);
        let mut w = CheckpointWriter::create(&t.path().join("some")).unwrap();
        let mut s = snapshotter();
        let holding = Holding::up_to(small.len() as u64);
        let read = s
            .read_layer(&mut w, LayerMeta::default(), &holding)
            .unwrap();
        assert_eq!(read.held_bytes(), small.len() as u64);
        assert!(w.blobs().contains(&ContentHash::of(&large)));
        assert!(!w.blobs().contains(&ContentHash::of(&small)));
        s.store_layer(&mut w, read, 1, None).unwrap();
        assert!(w.blobs().contains(&ContentHash::of(&small)));
        w.finish().unwrap();
    }
}
