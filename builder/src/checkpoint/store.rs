//! A checkpoint directory (`index.json`, `layers/`, `blobs/`): writing it layer by layer,
//! opening and verifying it, folding states and restoring from it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::blobs::{
    pack_rel_path, until_stopped, BlobStore, BlobWriter, Expect, PACKS, STREAM_THRESHOLD,
};
use super::error::{CheckpointError, IoResultExt, Result};
use super::limits::{MAX_ATTACHMENT, MAX_FILE_SIZE, MAX_INDEX_FILE, MAX_LAYER_FILE};
use super::manifest::{
    layer_file_name, ContentHash, EntryKind, Index, Layer, LayerMeta, LayerRef, FORMAT_VERSION,
};
use super::parallel::{all_cores, run_parallel};
use super::patch::{DiffRegions, Region};
use super::path::RelPath;
use super::restore::{
    apply_diff, apply_diff_from, restore_root, restore_root_from, restore_root_into,
    restore_root_into_from, restore_root_with, Contents, RestoreOptions, RestoreReport,
};
use super::rewrite::{RewritePair, Rewrites, Translator};
use super::staging::Staging;
use super::state::{check_root_state, diff_root, RootState, State};

const INDEX: &str = "index.json";
const LAYERS: &str = "layers";
const TMP: &str = "tmp";

fn write_atomic(dir: &Path, rel: &str, bytes: &[u8]) -> Result<()> {
    let dest = dir.join(rel);
    let tmp = dir
        .join(TMP)
        .join(format!("{}.{}", rel.replace('/', "_"), std::process::id()));
    fs::write(&tmp, bytes).at("write", &tmp)?;
    fs::rename(&tmp, &dest).at("rename into", &dest)
}

/// Writes a checkpoint directory one layer at a time. `index.json` is rewritten after every
/// layer, so the directory is a valid checkpoint of the layers so far at all times (only a
/// `tmp/` directory is left until [`CheckpointWriter::finish`]).
#[derive(Debug)]
pub struct CheckpointWriter {
    dir: PathBuf,
    blobs: BlobWriter,
    index: Index,
    /// Blobs already brought in from another checkpoint: the rewrites applied, and the old
    /// content hash → the hash here. Lets a second import of overlapping states (an
    /// incremental restore after a resume) skip what the first one did.
    imported: Option<(Vec<RewritePair>, HashMap<ContentHash, ContentHash>)>,
    /// Applied after the byte rewrite by imports (see [`Translator`]).
    translator: Option<Arc<dyn Translator>>,
    /// Where imports leave the file contents they read, for the restores from this writer
    /// that follow (see [`CheckpointWriter::stage_in`]).
    staging: Option<Staging>,
}

impl CheckpointWriter {
    /// Starts a new checkpoint in `dir`, which must not exist or be empty.
    pub fn create(dir: &Path) -> Result<Self> {
        match fs::read_dir(dir) {
            Ok(mut rd) => {
                if rd.next().is_some() {
                    return Err(CheckpointError::TargetNotUsable {
                        path: dir.to_owned(),
                        problem: "is not empty",
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).at("create dir", dir)?;
            }
            Err(e) => return Err(CheckpointError::io("read dir", dir, e)),
        }
        fs::create_dir(dir.join(LAYERS)).at("create dir", &dir.join(LAYERS))?;
        let blobs = BlobWriter::open(dir, &dir.join(TMP))?;
        let w = CheckpointWriter {
            dir: dir.to_owned(),
            blobs,
            index: Index {
                format_version: FORMAT_VERSION,
                meta: serde_json::Value::Null,
                roots: Vec::new(),
                layers: Vec::new(),
            },
            imported: None,
            translator: None,
            staging: None,
        };
        w.write_index()?;
        Ok(w)
    }

    /// From now on, the imports leave every file content they read (rewritten) in a staging
    /// directory created in `dir`, and the restores from this writer into `dir` (or below it,
    /// or, copied, elsewhere) take those contents from there instead of decompressing their
    /// blobs again; [`Self::end_staging`] removes the directory. `dir` is trusted (the build
    /// directory); the restored states must not use the staging directory's name
    /// (`.checkpoint-staging-…`), which [`Self::restore_state_into`] checks.
    pub fn stage_in(&mut self, dir: &Path) -> Result<()> {
        self.end_staging()?;
        self.staging = Some(Staging::create(dir)?);
        Ok(())
    }

    /// Removes the staging directory of [`Self::stage_in`], if any: before anything looks at
    /// the restored trees (the staged files linked into them have a second name until then).
    pub fn end_staging(&mut self) -> Result<()> {
        match self.staging.take() {
            Some(s) => s.remove(),
            None => Ok(()),
        }
    }

    /// True between [`Self::stage_in`] and [`Self::end_staging`].
    pub fn is_staging(&self) -> bool {
        self.staging.is_some()
    }

    /// The content of blob `hash` of this checkpoint, verified, read into memory (at most
    /// [`MAX_ATTACHMENT`] bytes, as [`BlobStore::read`]): the staged copy when an import
    /// staged it, else the blob.
    pub fn read_content(&self, hash: &ContentHash) -> Result<Vec<u8>> {
        if let Some(f) = self.staging.as_ref().and_then(|s| s.open(hash)) {
            let mut content = Vec::new();
            if f.take(MAX_ATTACHMENT + 1).read_to_end(&mut content).is_ok()
                && content.len() as u64 <= MAX_ATTACHMENT
            {
                return Ok(content);
            }
        }
        self.blobs.store().read(hash)
    }

    /// Passes the content of blob `hash` of this checkpoint, verified, to `sink` in chunks,
    /// whatever its size (memory stays bounded): the staged copy when an import staged it,
    /// else the blob, decompressed on the way. `sink` may stop the stream
    /// ([`ControlFlow::Break`]): then nothing more is read, the content is not verified, and
    /// the result is `Ok` (the caller decided on what it saw, unverified as every chunk is
    /// until the end).
    pub fn stream_content(
        &self,
        hash: &ContentHash,
        sink: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        // A staged file read back in part has fed `sink`: no second source then.
        until_stopped(sink, |pass| {
            match self.staging.as_ref().and_then(|s| s.stream(hash, pass)) {
                Some(streamed) => streamed,
                None => self
                    .blobs
                    .store()
                    .stream(hash, Expect::AtMost(MAX_FILE_SIZE), pass)
                    .map(drop),
            }
        })
        .map(drop)
    }

    fn contents(&self) -> Contents<'_> {
        Contents {
            blobs: self.blobs.store(),
            staged: self.staging.as_ref(),
        }
    }

    /// The hashes of `state`'s file contents, when the imports stage (else none).
    fn to_stage(&self, state: &State) -> HashSet<ContentHash> {
        if self.staging.is_none() {
            return HashSet::new();
        }
        state
            .roots
            .values()
            .flat_map(|r| r.values().filter_map(|e| e.blob()))
            .collect()
    }

    /// Has rewritten imports run `translator` over every root state they rewrite.
    pub fn set_translator(&mut self, translator: Arc<dyn Translator>) {
        self.translator = Some(translator);
    }

    /// Rewrites `old` (one root's state in `from`) with `rw` and the translator, storing the
    /// contents the translator gives.
    fn rewrite_root(
        &self,
        from: &Checkpoint,
        rw: &Rewrites,
        old: &RootState,
        hashes: &HashMap<ContentHash, ContentHash>,
    ) -> std::result::Result<RootState, String> {
        let mut new = rw.apply_root_state(old, hashes)?;
        let Some(translator) = &self.translator else {
            return Ok(new);
        };
        if rw.is_identity() {
            return Ok(new);
        }
        let mut read = |p: &RelPath| match &old.get(p)?.kind {
            EntryKind::File { size, blake3, .. } => from
                .blobs()
                .read_expecting(blake3, Expect::Exactly(*size))
                .ok(),
            _ => None,
        };
        for (path, bytes) in translator.translate(old, &mut read, rw) {
            let path = rw
                .apply_path(&path)
                .map_err(|e| e.to_string())?
                .unwrap_or(path);
            if let Some(EntryKind::File {
                size,
                blake3,
                hardlink: None,
            }) = new.get_mut(&path).map(|e| &mut e.kind)
            {
                *blake3 = self.blobs.put_bytes(&bytes).map_err(|e| e.to_string())?;
                *size = bytes.len() as u64;
            }
        }
        Ok(new)
    }

    fn write_index(&self) -> Result<()> {
        write_atomic(&self.dir, INDEX, &self.index.to_bytes())
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The blob store being written.
    pub fn blobs(&self) -> &BlobWriter {
        &self.blobs
    }

    /// Layers written so far.
    pub fn layer_count(&self) -> u32 {
        self.index.layers.len() as u32
    }

    /// Sets the checkpoint-wide metadata (system, derivation, builder version, ...).
    pub fn set_meta(&mut self, meta: serde_json::Value) -> Result<()> {
        self.index.meta = meta;
        self.write_index()
    }

    /// Declares root names (kept sorted and unique in the index).
    pub fn add_roots(&mut self, roots: impl IntoIterator<Item = String>) -> Result<()> {
        let mut set: BTreeSet<String> = self.index.roots.iter().cloned().collect();
        for r in roots {
            super::manifest::check_root_name(&r)?;
            set.insert(r);
        }
        let roots: Vec<String> = set.into_iter().collect();
        if roots != self.index.roots {
            self.index.roots = roots;
            self.write_index()?;
        }
        Ok(())
    }

    /// Stores an attachment (e.g. the shell state) and returns its hash, to be named in
    /// the next layer's `LayerMeta::attachments`. Readers hold attachments in memory, so
    /// one larger than [`MAX_ATTACHMENT`] is refused ([`CheckpointError::TooLarge`]).
    pub fn put_blob(&self, data: &[u8]) -> Result<ContentHash> {
        if data.len() as u64 > MAX_ATTACHMENT {
            return Err(CheckpointError::TooLarge {
                what: "attachment",
                found: data.len() as u64,
                limit: MAX_ATTACHMENT,
            });
        }
        self.blobs.put_bytes(data)
    }

    /// Writes `layer` as the next layer. Its index must equal [`Self::layer_count`], its
    /// roots must have been declared, and every blob it references must already be stored.
    pub fn write_layer(&mut self, layer: &Layer) -> Result<LayerRef> {
        let file = self
            .dir
            .join(layer_file_name(layer.index, &layer.meta.name));
        let problem = |p: String| CheckpointError::Index {
            file: file.clone(),
            problem: p,
        };
        if layer.index != self.layer_count() {
            return Err(problem(format!(
                "layer index {} but {} layers exist",
                layer.index,
                self.layer_count()
            )));
        }
        layer.validate()?;
        for root in layer.roots.keys() {
            if self.index.roots.binary_search(root).is_err() {
                return Err(CheckpointError::NoSuchRoot { root: root.clone() });
            }
        }
        let blobs = layer
            .roots
            .values()
            .flat_map(|d| d.changed.iter().filter_map(|(_, e)| e.blob()))
            .chain(layer.meta.attachments.values().copied());
        for h in blobs {
            if !self.blobs.contains(&h) {
                return Err(CheckpointError::BlobMissing {
                    hash: h.to_hex(),
                    dir: self.blobs.store().dir(),
                });
            }
        }
        // The blobs stored since the previous layer become this layer's pack.
        let (table, pack_len) = self.blobs.seal(layer.index)?;
        let layer = Layer {
            blobs: table,
            ..layer.clone()
        };
        let bytes = layer.to_bytes();
        write_atomic(
            &self.dir,
            &layer_file_name(layer.index, &layer.meta.name),
            &bytes,
        )?;
        let r = LayerRef {
            index: layer.index,
            name: layer.meta.name.clone(),
            blake3: ContentHash::of(&bytes),
            blobs_added: layer.blobs.len() as u64,
            blob_bytes_added: pack_len,
        };
        self.index.layers.push(r.clone());
        self.write_index()?;
        Ok(r)
    }

    /// Copies layer `index` of another checkpoint, with the blobs it references (verified,
    /// byte for byte), as this checkpoint's next layer. Copy layers 0..=n in order to
    /// continue a build from a restored state without referencing the old checkpoint.
    pub fn import_layer(&mut self, from: &Checkpoint, index: u32) -> Result<LayerRef> {
        let layer = from.layer(index)?;
        self.add_roots(from.roots().iter().cloned())?;
        for (h, expect) in blob_uses(layer) {
            self.blobs.import(from.blobs(), &h, expect)?;
        }
        self.write_layer(layer)
    }

    /// Starts this checkpoint with layers `0..=upto` of `from`, with every `old` byte string
    /// of `rewrites` replaced by its `new` (same length; see [`Rewrites`] for the exact
    /// semantics) in file contents, attachments, symlink targets, xattr names and values,
    /// path components, and the layer names, attachment names and `meta` strings and keys.
    /// The writer must hold no layer yet.
    ///
    /// Every blob is read (and verified) once: content with no occurrence is copied byte for
    /// byte under its old hash, rewritten content is stored under the hash of the new bytes
    /// (sizes never change). Each layer is the diff between the rewritten states before and
    /// after it, so layers stay canonical even when rewriting renames paths or makes two
    /// contents equal; without any occurrence the layer files are byte-identical to
    /// [`CheckpointWriter::import_layer`]'s. Returns the state after `upto` in this
    /// checkpoint, ready for [`super::Snapshotter::adopt`] once the trees are restored from
    /// this checkpoint. On error the writer holds a partial import and should be discarded.
    pub fn import_layers_rewritten(
        &mut self,
        from: &Checkpoint,
        upto: u32,
        rewrites: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<State> {
        if self.layer_count() != 0 {
            return Err(CheckpointError::WriterNotEmpty {
                layers: self.layer_count(),
            });
        }
        let rw = Rewrites::new(rewrites)?;
        from.layer(upto)?;
        let layers = &from.layers()[..=upto as usize];
        let stage = self.to_stage(&from.state_after(upto)?);

        let mut hashes = self.take_imported(rewrites);
        self.add_roots(from.roots().iter().cloned())?;
        let mut old_state = State::default();
        let mut new_state = State::default();
        for l in layers {
            let conflict = |problem: String| CheckpointError::RewriteConflict {
                layer: l.index,
                problem,
            };
            old_state.apply(l)?;
            // The blobs this layer is the first to reference (with the size an entry gives
            // them), brought in before it is written so the index counts them here.
            let mut fresh: BTreeMap<ContentHash, Option<u64>> = BTreeMap::new();
            for d in l.roots.values() {
                for (_, e) in &d.changed {
                    if let EntryKind::File { size, blake3, .. } = &e.kind {
                        if !hashes.contains_key(blake3) {
                            fresh.insert(*blake3, Some(*size));
                        }
                    }
                }
            }
            for h in l.meta.attachments.values() {
                if !hashes.contains_key(h) {
                    fresh.entry(*h).or_insert(None);
                }
            }
            self.import_blobs(from, &rw, fresh, &stage, &mut hashes)?;
            let mut roots = BTreeMap::new();
            for root in l.roots.keys() {
                let rewritten = self
                    .rewrite_root(from, &rw, old_state.root(root), &hashes)
                    .map_err(conflict)?;
                check_root_state(&rewritten)
                    .map_err(|(p, m)| conflict(format!("path {p}: {m}")))?;
                let diff = diff_root(new_state.root(root), &rewritten);
                if !diff.is_empty() {
                    roots.insert(root.clone(), diff);
                }
                new_state.roots.insert(root.clone(), rewritten);
            }
            let mut attachments = BTreeMap::new();
            for (name, h) in &l.meta.attachments {
                let name = rw.apply_str(name).map_err(conflict)?;
                if attachments.insert(name.clone(), hashes[h]).is_some() {
                    return Err(conflict(format!(
                        "two attachment names are rewritten to {name:?}"
                    )));
                }
            }
            let layer = Layer {
                index: l.index,
                meta: LayerMeta {
                    name: rw.apply_str(&l.meta.name).map_err(conflict)?,
                    attachments,
                    meta: rw.apply_json(&l.meta.meta).map_err(conflict)?,
                },
                roots,
                blobs: Vec::new(),
            };
            self.write_layer(&layer)?;
        }
        for r in &self.index.roots {
            new_state.roots.entry(r.clone()).or_default();
        }
        self.imported = Some((rewrites.to_vec(), hashes));
        Ok(new_state)
    }

    /// The state of `from` after layer `upto`, rewritten with `rewrites` as
    /// [`Self::import_layers_rewritten`] does, with every blob it references brought into
    /// this checkpoint (rewritten where needed); no layer is written. Blobs an earlier import
    /// with the same rewrites brought in are not read again. The entries of `leave_out`
    /// (root, path) are left out of the state, and their contents are not brought in.
    pub fn import_state_rewritten(
        &mut self,
        from: &Checkpoint,
        upto: u32,
        rewrites: &[RewritePair],
        leave_out: &[(String, RelPath)],
    ) -> Result<State> {
        let rw = Rewrites::new(rewrites)?;
        let mut old_state = from.state_after(upto)?;
        for (root, path) in leave_out {
            if let Some(root) = old_state.roots.get_mut(root) {
                root.remove(path);
            }
        }
        let mut hashes = self.take_imported(rewrites);
        let mut fresh: BTreeMap<ContentHash, Option<u64>> = BTreeMap::new();
        for root in old_state.roots.values() {
            for e in root.values() {
                if let EntryKind::File { size, blake3, .. } = &e.kind {
                    if !hashes.contains_key(blake3) {
                        fresh.insert(*blake3, Some(*size));
                    }
                }
            }
        }
        let stage = self.to_stage(&old_state);
        let imported = self.import_blobs(from, &rw, fresh, &stage, &mut hashes);
        if let Err(e) = imported {
            self.imported = Some((rewrites.to_vec(), hashes));
            return Err(e);
        }
        let mut new_state = State::default();
        for (name, root) in &old_state.roots {
            let rewritten = self
                .rewrite_root(from, &rw, root, &hashes)
                .map_err(|problem| CheckpointError::RewriteConflict {
                    layer: upto,
                    problem,
                })?;
            check_root_state(&rewritten).map_err(|(p, m)| CheckpointError::RewriteConflict {
                layer: upto,
                problem: format!("path {p}: {m}"),
            })?;
            new_state.roots.insert(name.clone(), rewritten);
        }
        self.imported = Some((rewrites.to_vec(), hashes));
        Ok(new_state)
    }

    /// Turns the tree at `target`, which is in state `live`, into state `want` in place,
    /// writing only what differs: entries whose content and kind match keep their inode and
    /// get `want`'s mode, mtime and xattrs; the rest is created from this checkpoint's blobs
    /// (which must hold every content `want` has and `live` lacks), each verified while it is
    /// written. As [`super::restore::apply_diff`]: not atomic (here even for a corrupt blob:
    /// the caller discards the tree on error), nothing written outside `target`.
    pub fn apply_state_over(
        &self,
        live: &RootState,
        want: &RootState,
        target: &Path,
    ) -> Result<RestoreReport> {
        let diff = diff_root(live, want);
        let mut report = apply_diff_from(self.contents(), live, want, &diff, target)?;
        report.kept = want.len().saturating_sub(diff.changed.len());
        Ok(report)
    }

    /// Restores `state` from this checkpoint's blobs at `target`, which must not exist.
    pub fn restore_state(&self, state: &RootState, target: &Path) -> Result<RestoreReport> {
        restore_root_from(self.contents(), state, target, RestoreOptions::default())
    }

    /// Restores `state` from this checkpoint's blobs into the existing directory `target`,
    /// as [`Checkpoint::restore_state_into`] does; a staging directory there stays.
    pub fn restore_state_into(&self, state: &RootState, target: &Path) -> Result<RestoreReport> {
        restore_root_into_from(self.contents(), state, target)
    }

    /// Brings the blobs `wanted` of `from` (hash → size, when an entry gives it) into this
    /// checkpoint with `rw` applied, on all cores, and records old → new hashes in `hashes`.
    /// The file contents of `stage` are left in the staging directory on the way.
    fn import_blobs(
        &self,
        from: &Checkpoint,
        rw: &Rewrites,
        wanted: BTreeMap<ContentHash, Option<u64>>,
        stage: &HashSet<ContentHash>,
        hashes: &mut HashMap<ContentHash, ContentHash>,
    ) -> Result<()> {
        let jobs: Vec<(ContentHash, Option<u64>)> = wanted.into_iter().collect();
        let threads = all_cores();
        let done = run_parallel(&jobs, threads, |(h, size)| match (&self.staging, size) {
            (Some(staging), Some(size)) if stage.contains(h) => {
                stage_blob(from.blobs(), &self.blobs, staging, rw, h, *size)
            }
            _ => rewrite_blob(from.blobs(), &self.blobs, rw, h, *size),
        })?;
        hashes.extend(jobs.iter().map(|(h, _)| *h).zip(done));
        Ok(())
    }

    /// The memo of blobs imported with exactly `rewrites` (empty for other rewrites).
    fn take_imported(&mut self, rewrites: &[RewritePair]) -> HashMap<ContentHash, ContentHash> {
        match self.imported.take() {
            Some((pairs, hashes)) if pairs == rewrites => hashes,
            _ => HashMap::new(),
        }
    }

    /// Removes the temporary directory and returns the checkpoint directory.
    pub fn finish(self) -> Result<PathBuf> {
        self.write_index()?;
        let tmp = self.dir.join(TMP);
        fs::remove_dir_all(&tmp).at("remove", &tmp)?;
        Ok(self.dir)
    }
}

/// Brings blob `hash` of `from` into `to` with `rw` applied; returns the hash it has there.
/// The blob is read once to verify it and look for occurrences; content without any is
/// copied as is (same hash, no recompression); rewritten content is stored as a patch of
/// the earlier one when that pays, else anew.
fn rewrite_blob(
    from: &BlobStore,
    to: &BlobWriter,
    rw: &Rewrites,
    hash: &ContentHash,
    size: Option<u64>,
) -> Result<ContentHash> {
    let expect = Expect::for_use(size);
    if rw.is_identity() {
        to.import(from, hash, expect)?;
        return Ok(*hash);
    }
    if size.is_some_and(|s| s <= STREAM_THRESHOLD) {
        let data = from.read_expecting(hash, expect)?;
        let Some(new) = rw.apply(&data) else {
            to.import_verified(from, hash)?;
            return Ok(*hash);
        };
        let regions = size
            .and_then(DiffRegions::for_content)
            .and_then(|mut diff| {
                diff.feed(&data, &new);
                diff.finish()
            });
        let new_hash = ContentHash::of(&new);
        if to.put_patch_over(from, hash, data.len() as u64, new_hash, regions)? {
            return Ok(new_hash);
        }
        return to.put_bytes(&new);
    }
    // Large or of unknown size: look first, store in a second streaming pass if needed.
    let (replaced, new_hash, regions) =
        rewrite_streamed(from, rw, hash, expect, size, &mut |_| Ok(()))?;
    if replaced == 0 {
        to.import_verified(from, hash)?;
        return Ok(*hash);
    }
    if let Some(size) = size {
        if to.put_patch_over(from, hash, size, new_hash, regions)? {
            return Ok(new_hash);
        }
    }
    to.put_streamed(|sink| {
        let mut w = rw.stream();
        from.stream(hash, expect, |c| w.feed(c, &mut *sink))?;
        w.finish(&mut *sink)?;
        Ok(())
    })
}

/// Streams blob `hash` of `from` (verified) through `rw` into `out`. Returns the number of
/// replacements that changed bytes, the hash of the rewritten content, and the regions where
/// it differs from the content read: `None` for a content under `patch::PATCH_MIN_SIZE` (or of
/// no known `size`), with no change, or whose changes would not fit a patch record.
fn rewrite_streamed(
    from: &BlobStore,
    rw: &Rewrites,
    hash: &ContentHash,
    expect: Expect,
    size: Option<u64>,
    out: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<(u64, ContentHash, Option<Vec<Region>>)> {
    let mut diff = size.and_then(DiffRegions::for_content);
    let diffing = diff.is_some();
    // The bytes read from `.1` on were not passed on yet: the rewriter holds back the end of
    // a chunk that may begin a match. Rewrites keep lengths, so byte `i` out is byte `i` in.
    let pending = std::cell::RefCell::new((Vec::<u8>::new(), 0usize));
    let mut hasher = blake3::Hasher::new();
    let mut emit = |c: &[u8]| -> Result<()> {
        hasher.update(c);
        if let Some(diff) = diff.as_mut() {
            let (read, start) = &mut *pending.borrow_mut();
            let end = *start + c.len();
            diff.feed(&read[*start..end], c);
            *start = end;
        }
        out(c)
    };
    let mut scan = rw.stream();
    from.stream(hash, expect, |c| {
        if diffing {
            let (read, start) = &mut *pending.borrow_mut();
            read.drain(..*start);
            *start = 0;
            read.extend_from_slice(c);
        }
        scan.feed(c, &mut emit)
    })?;
    let replaced = scan.finish(&mut emit)?;
    let new = ContentHash::from(hasher.finalize());
    Ok((replaced, new, diff.and_then(DiffRegions::finish)))
}

/// [`rewrite_blob`] for a file content that a restore will want: read once, rewritten, written
/// to a staged file and hashed on the way; stored as it was (without occurrences), as a patch
/// of it, or from the staged file.
fn stage_blob(
    from: &BlobStore,
    to: &BlobWriter,
    staging: &Staging,
    rw: &Rewrites,
    hash: &ContentHash,
    size: u64,
) -> Result<ContentHash> {
    let mut staged = staging.begin()?;
    let mut result = (0, *hash, None);
    staged.fill(|sink| {
        result = rewrite_streamed(from, rw, hash, Expect::Exactly(size), Some(size), sink)?;
        Ok(())
    })?;
    let (replaced, rewritten, regions) = result;
    let new = if replaced == 0 {
        to.import_verified(from, hash)?;
        *hash
    } else if to.put_patch_over(from, hash, size, rewritten, regions)? {
        rewritten
    } else if size <= STREAM_THRESHOLD {
        // As `rewrite_blob` stores it: from memory (raw when compression does not pay).
        let mut data = Vec::with_capacity(size as usize);
        staged.read_back(&mut |c| {
            data.extend_from_slice(c);
            Ok(())
        })?;
        to.put_bytes(&data)?
    } else {
        to.put_streamed(|sink| staged.read_back(sink))?
    };
    if new != *hash && new != rewritten {
        return Err(CheckpointError::BlobCorrupt {
            path: to.store().dir(),
            problem: format!("the rewritten content of blob {hash} changed while it was stored"),
        });
    }
    staged.publish(&new)?;
    Ok(new)
}

/// Every blob `layer` uses (its file entries and attachments) with what its content must
/// be; a hash used both ways is listed once per use.
fn blob_uses(layer: &Layer) -> Vec<(ContentHash, Expect)> {
    let files = layer.roots.values().flat_map(|d| {
        d.changed.iter().filter_map(|(_, e)| match &e.kind {
            EntryKind::File { size, blake3, .. } => Some((*blake3, Expect::Exactly(*size))),
            _ => None,
        })
    });
    let attachments = layer
        .meta
        .attachments
        .values()
        .map(|h| (*h, Expect::for_use(None)));
    files.chain(attachments).collect()
}

/// Reads a checkpoint file that is parsed in memory: it must be a regular file (never
/// followed through a symlink) of at most `cap` bytes, checked before reading; reading stops
/// at `cap` even if the file grows meanwhile.
fn read_capped(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                CheckpointError::UnexpectedFile {
                    path: path.to_owned(),
                    problem: "a checkpoint file must be a regular file, not a symlink",
                }
            } else {
                CheckpointError::io("open", path, e)
            }
        })?;
    let meta = file.metadata().at("stat", path)?;
    if !meta.file_type().is_file() {
        return Err(CheckpointError::UnexpectedFile {
            path: path.to_owned(),
            problem: "a checkpoint file must be a regular file",
        });
    }
    let too_big = |len: u64| CheckpointError::Index {
        file: path.to_owned(),
        problem: format!("{what} of {len} bytes is larger than the limit of {cap} bytes"),
    };
    if meta.len() > cap {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .at("read", path)?;
    if bytes.len() as u64 > cap {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// What two uses of one blob together require of it; `None` when no content fits both.
fn combine(a: Expect, b: Expect) -> Option<Expect> {
    match (a, b) {
        (Expect::Exactly(x), Expect::Exactly(y)) => (x == y).then_some(a),
        (Expect::Exactly(x), Expect::AtMost(m)) | (Expect::AtMost(m), Expect::Exactly(x)) => {
            (x <= m).then_some(Expect::Exactly(x))
        }
        (Expect::AtMost(x), Expect::AtMost(y)) => Some(Expect::AtMost(x.min(y))),
    }
}

fn describe_use(e: Expect) -> String {
    match e {
        Expect::Exactly(n) => format!("a file of {n} bytes"),
        Expect::AtMost(n) => format!("an attachment (at most {n} bytes)"),
    }
}

/// What [`Checkpoint::verify`] checked.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct VerifyReport {
    /// Layers folded.
    pub layers: u32,
    /// Referenced blobs whose content was rehashed.
    pub blobs_verified: u64,
    /// Uncompressed bytes rehashed.
    pub bytes_verified: u64,
    /// Blob files no layer references (allowed, but wasted space).
    pub unreferenced_blobs: u64,
}

/// What reading a checkpoint's blobs must check, from [`Checkpoint::check_structure`]: every
/// referenced blob with what its uses claim and its first use (for messages), patches and
/// deltas first.
#[derive(Clone, Debug, Default)]
pub struct ContentCheck {
    referenced: Vec<(ContentHash, Expect, String)>,
}

/// A checkpoint opened for reading. Opening parses the index and every layer and checks
/// format versions, layer file hashes and per-layer rules; [`Checkpoint::verify`] checks
/// everything else.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    index: Index,
    layers: Vec<Layer>,
    blobs: BlobStore,
}

impl Checkpoint {
    /// Opens the checkpoint in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let index_path = dir.join(INDEX);
        let bytes = read_capped(&index_path, MAX_INDEX_FILE, "index.json")?;
        let index = Index::from_bytes(&bytes, &index_path)?;
        let mut layers = Vec::with_capacity(index.layers.len());
        for r in &index.layers {
            let file = dir.join(layer_file_name(r.index, &r.name));
            let bytes = read_capped(&file, MAX_LAYER_FILE, "a layer file")?;
            if ContentHash::of(&bytes) != r.blake3 {
                return Err(CheckpointError::Index {
                    file,
                    problem: "layer file does not match the hash in index.json".into(),
                });
            }
            let layer = Layer::from_bytes(&bytes, &file)?;
            if layer.index != r.index || layer.meta.name != r.name {
                return Err(CheckpointError::Index {
                    file,
                    problem: "layer index or name differs from index.json".into(),
                });
            }
            for root in layer.roots.keys() {
                if index.roots.binary_search(root).is_err() {
                    return Err(CheckpointError::Index {
                        file,
                        problem: format!("root {root:?} is not declared in index.json"),
                    });
                }
            }
            layers.push(layer);
        }
        let blobs = BlobStore::open(dir, layers.iter().map(|l| (l.index, &l.blobs[..])))?;
        Ok(Checkpoint {
            dir: dir.to_owned(),
            index,
            layers,
            blobs,
        })
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Checkpoint-wide metadata.
    pub fn meta(&self) -> &serde_json::Value {
        &self.index.meta
    }

    /// Root names.
    pub fn roots(&self) -> &[String] {
        &self.index.roots
    }

    /// All layers in order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// One layer.
    pub fn layer(&self, index: u32) -> Result<&Layer> {
        self.layers
            .get(index as usize)
            .ok_or(CheckpointError::NoSuchLayer {
                index,
                count: self.layers.len() as u32,
            })
    }

    /// The blob store (reads are verified).
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Reads and verifies a blob of unknown size into memory, e.g. a layer attachment: at
    /// most [`MAX_ATTACHMENT`] bytes (a longer one is an error as soon as reading passes
    /// the limit).
    pub fn read_blob(&self, hash: &ContentHash) -> Result<Vec<u8>> {
        self.blobs.read(hash)
    }

    /// The state of every root after layer `index`, checking whole-state rules on the way.
    pub fn state_after(&self, index: u32) -> Result<State> {
        self.layer(index)?;
        let mut st = State::default();
        for l in &self.layers[..=index as usize] {
            st.apply(l)?;
        }
        for r in &self.index.roots {
            st.roots.entry(r.clone()).or_default();
        }
        Ok(st)
    }

    /// Checks everything: directory layout (only `index.json`, the indexed layer files and
    /// well-named blob files; nothing but regular files and directories), every layer's
    /// rules and the states they fold to, and the hash of every referenced blob (one this
    /// process has read and verified already is not read again).
    pub fn verify(&self) -> Result<VerifyReport> {
        let contents = self.check_structure(false)?;
        self.verify_contents(&contents)
    }

    /// [`Checkpoint::verify`] for a checkpoint that may still be written, or whose writer was
    /// killed (a development cache entry): its `tmp/` directory and layer files the index does
    /// not list yet are ignored; everything the index lists is checked as strictly.
    pub fn verify_unfinished(&self) -> Result<VerifyReport> {
        let contents = self.check_structure(true)?;
        self.verify_contents(&contents)
    }

    /// [`Checkpoint::verify`] without reading any blob's content: the directory layout, every
    /// layer's rules and the states they fold to, and that every referenced blob is stored
    /// by its layer or an earlier one, claimed with one size. Returns what
    /// [`Checkpoint::verify_contents`] then reads. Every read of a blob verifies what it
    /// reads, so a caller that reads only some blobs before it checks the rest reads none
    /// twice (a base checkpoint, docs/trust.md).
    pub fn check_structure(&self, allow_unfinished: bool) -> Result<ContentCheck> {
        let expected_layers: BTreeSet<String> = self
            .index
            .layers
            .iter()
            .map(|r| layer_file_name(r.index, &r.name))
            .collect();
        for e in fs::read_dir(&self.dir).at("read dir", &self.dir)? {
            let e = e.at("read dir", &self.dir)?;
            let name = e.file_name();
            let ft = e.file_type().at("stat", &e.path())?;
            let ok = match name.to_str() {
                Some(INDEX) => ft.is_file(),
                Some(LAYERS) | Some(PACKS) => ft.is_dir(),
                Some(TMP) => allow_unfinished && ft.is_dir(),
                _ => false,
            };
            if !ok {
                return Err(CheckpointError::UnexpectedFile {
                    path: e.path(),
                    problem: "only index.json, layers/ and packs/ belong in a checkpoint",
                });
            }
        }
        let layers_dir = self.dir.join(LAYERS);
        for e in fs::read_dir(&layers_dir).at("read dir", &layers_dir)? {
            let e = e.at("read dir", &layers_dir)?;
            let rel = format!("{LAYERS}/{}", e.file_name().to_string_lossy());
            if !expected_layers.contains(&rel) && !allow_unfinished {
                return Err(CheckpointError::UnexpectedFile {
                    path: e.path(),
                    problem: "layer file not listed in index.json",
                });
            }
        }
        // Packs: exactly one per layer that stored blobs, of the length its table gives (a
        // writer that was stopped may have moved the next layer's pack in already).
        let mut expected_packs: BTreeMap<String, u64> = BTreeMap::new();
        for l in &self.layers {
            if !l.blobs.is_empty() {
                let len = l.blobs.last().map_or(0, |b| b.offset + b.length);
                expected_packs.insert(pack_rel_path(l.index), len);
            }
        }
        let packs_dir = self.dir.join(PACKS);
        for e in fs::read_dir(&packs_dir).at("read dir", &packs_dir)? {
            let e = e.at("read dir", &packs_dir)?;
            let rel = format!("{PACKS}/{}", e.file_name().to_string_lossy());
            let meta = fs::symlink_metadata(e.path()).at("stat", &e.path())?;
            match expected_packs.remove(&rel) {
                Some(len) if meta.file_type().is_file() && meta.len() == len => {}
                Some(len) => {
                    return Err(CheckpointError::BlobCorrupt {
                        path: e.path(),
                        problem: format!(
                        "the pack must be a regular file of {len} bytes, as its layer's table says"
                    ),
                    })
                }
                None if allow_unfinished => {}
                None => {
                    return Err(CheckpointError::UnexpectedFile {
                        path: e.path(),
                        problem: "no layer's blob table names this pack",
                    })
                }
            }
        }
        if let Some((rel, _)) = expected_packs.into_iter().next() {
            let first = self
                .layers
                .iter()
                .find(|l| pack_rel_path(l.index) == rel)
                .and_then(|l| l.blobs.first());
            return Err(CheckpointError::BlobMissing {
                hash: first.map(|b| b.blake3.to_hex()).unwrap_or_default(),
                dir: self.blobs.dir(),
            });
        }
        let mut st = State::default();
        // Every referenced blob with what its uses require of it, and the first use (for
        // messages): all file entries of one content must claim one size, and an
        // attachment must fit in memory.
        let mut referenced: BTreeMap<ContentHash, (Expect, String)> = BTreeMap::new();
        for l in &self.layers {
            st.apply(l)?;
            let uses = l
                .roots
                .iter()
                .flat_map(|(root, d)| {
                    d.changed.iter().filter_map(move |(p, e)| match &e.kind {
                        EntryKind::File { size, blake3, .. } => {
                            Some((*blake3, Expect::Exactly(*size), root.as_str(), p.escaped()))
                        }
                        _ => None,
                    })
                })
                .chain(l.meta.attachments.iter().map(|(name, h)| {
                    (*h, Expect::for_use(None), "", format!("attachment {name}"))
                }));
            for (h, expect, root, what) in uses {
                let problem = |problem: String| CheckpointError::Manifest {
                    layer: l.index,
                    root: root.to_owned(),
                    path: what.clone(),
                    problem,
                };
                match self.blobs.location(&h) {
                    Some((pack, _)) if pack <= l.index => {}
                    Some((pack, _)) => {
                        return Err(problem(format!(
                            "blob {h} is stored by the later layer {pack}: a layer may only use blobs of itself and earlier layers"
                        )))
                    }
                    None => {
                        return Err(CheckpointError::BlobMissing {
                            hash: h.to_hex(),
                            dir: self.blobs.dir(),
                        })
                    }
                }
                match referenced.get_mut(&h) {
                    None => {
                        referenced.insert(h, (expect, format!("layer {}, {what}", l.index)));
                    }
                    Some((have, first)) => {
                        *have = combine(*have, expect).ok_or_else(|| {
                            problem(format!(
                                "blob {h} is used as {} here but as {} by {first}",
                                describe_use(expect),
                                describe_use(*have)
                            ))
                        })?;
                    }
                }
            }
        }
        let mut referenced: Vec<(ContentHash, Expect, String)> = referenced
            .into_iter()
            .map(|(h, (e, first))| (h, e, first))
            .collect();
        // Patches and deltas first: reading one verifies its base, which is then not read a
        // second time on its own ([`BlobStore::verify_once`]).
        referenced.sort_by_key(|(h, _, _)| self.blobs.encoding_of(h).is_none_or(|e| e.is_whole()));
        Ok(ContentCheck { referenced })
    }

    /// The rest of [`Checkpoint::verify`] after [`Checkpoint::check_structure`]: rehashes
    /// every blob in `contents`, and every whole blob a patch or delta among them stands on,
    /// except those this process has read in full and verified already.
    pub fn verify_contents(&self, contents: &ContentCheck) -> Result<VerifyReport> {
        self.verify_contents_on(contents, all_cores())
    }

    /// [`Checkpoint::verify_contents`] on `threads` threads (at least one).
    pub fn verify_contents_on(
        &self,
        contents: &ContentCheck,
        threads: usize,
    ) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            layers: self.layers.len() as u32,
            ..VerifyReport::default()
        };
        // Rehash every referenced blob, each stopped as soon as it passes what its uses
        // claim.
        let sizes = run_parallel(&contents.referenced, threads, |(h, expect, first)| {
            self.blobs.verify_once(h, *expect).map_err(|e| match e {
                CheckpointError::BlobCorrupt { path, problem } => CheckpointError::BlobCorrupt {
                    path,
                    problem: format!("{problem} (used by {first})"),
                },
                other => other,
            })
        })?;
        report.blobs_verified = sizes.len() as u64;
        report.bytes_verified = sizes.iter().sum();
        // A patched or delta blob's base is used through it, and so is the base of a delta a
        // patch stands on. Each is verified on its own too: reading a delta may have taken
        // its base's content from memory, decoded from another checkpoint.
        let mut used: HashSet<ContentHash> =
            contents.referenced.iter().map(|(h, _, _)| *h).collect();
        let mut bases = BTreeMap::new();
        for (h, _, _) in &contents.referenced {
            // Verified above: at most two steps (a patch over a delta) lead to a whole blob.
            let mut at = *h;
            for _ in 0..2 {
                let Some(m) = self.blobs.made_from(&at)? else {
                    break;
                };
                if used.insert(m.base) {
                    bases.insert(m.base, m.base_size);
                }
                at = m.base;
            }
        }
        let bases: Vec<(ContentHash, u64)> = bases.into_iter().collect();
        run_parallel(&bases, threads, |(h, size)| {
            self.blobs.verify_once(h, Expect::Exactly(*size))
        })?;
        report.unreferenced_blobs = self
            .blobs
            .hashes()
            .iter()
            .filter(|h| !used.contains(h))
            .count() as u64;
        Ok(report)
    }

    fn root_known(&self, root: &str) -> Result<()> {
        if self.index.roots.iter().any(|r| r == root) {
            Ok(())
        } else {
            Err(CheckpointError::NoSuchRoot {
                root: root.to_owned(),
            })
        }
    }

    /// Materialises root `root` as it was after layer `index` at `target` (which must not
    /// exist or be an empty directory), without setuid and setgid bits; see
    /// [`restore_root`].
    pub fn restore(&self, index: u32, root: &str, target: &Path) -> Result<RestoreReport> {
        self.restore_with(index, root, target, RestoreOptions::default())
    }

    /// [`Checkpoint::restore`] with `opts` (e.g. keeping setuid and setgid bits).
    pub fn restore_with(
        &self,
        index: u32,
        root: &str,
        target: &Path,
        opts: RestoreOptions,
    ) -> Result<RestoreReport> {
        self.root_known(root)?;
        let st = self.state_after(index)?;
        restore_root_with(&self.blobs, st.root(root), target, opts)
    }

    /// Like [`Checkpoint::restore`] from a state already folded with
    /// [`Checkpoint::state_after`] (restoring several roots folds once).
    pub fn restore_state(&self, state: &RootState, target: &Path) -> Result<RestoreReport> {
        restore_root(&self.blobs, state, target)
    }

    /// [`Checkpoint::restore_state`] with `opts`.
    pub fn restore_state_with(
        &self,
        state: &RootState,
        target: &Path,
        opts: RestoreOptions,
    ) -> Result<RestoreReport> {
        restore_root_with(&self.blobs, state, target, opts)
    }

    /// Like [`Checkpoint::restore_state`] into `target`, an existing directory that stays
    /// in place (a mount point): its content is replaced, but only once the whole tree has
    /// been built and verified inside it; see [`restore_root_into`].
    pub fn restore_state_into(&self, root: &RootState, target: &Path) -> Result<RestoreReport> {
        restore_root_into(&self.blobs, root, target)
    }

    /// Turns `target`, a tree in the state of `root` after layer `index - 1` (or absent for
    /// layer 0), into the state after layer `index`; see [`apply_diff`].
    pub fn apply_layer(&self, index: u32, root: &str, target: &Path) -> Result<RestoreReport> {
        self.root_known(root)?;
        let next = self.state_after(index)?;
        let prev = if index == 0 {
            State::default()
        } else {
            self.state_after(index - 1)?
        };
        let Some(diff) = self.layer(index)?.roots.get(root) else {
            return Ok(RestoreReport {
                root_present: !next.root(root).is_empty(),
                ..RestoreReport::default()
            });
        };
        apply_diff(&self.blobs, prev.root(root), next.root(root), diff, target)
    }
}
