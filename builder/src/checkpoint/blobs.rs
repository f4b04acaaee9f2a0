//! The content-addressed blob store of a checkpoint: every distinct content stored once,
//! in the pack of the layer that first needed it (`packs/NNN.pack`, located through that
//! layer's blob table), and read back with its hash verified. Appending to one pack file
//! per layer keeps a snapshot or an import to a few file writes however many blobs it
//! stores; an imported blob stays in the earlier checkpoint's pack, and a large content in
//! the temporary file it was compressed into, until the layer's seal copies it into place.
//! Every stored byte is masked ([`MASK`]) so that no store path a content holds stands
//! verbatim in a pack, where Nix's scan for references would find it. Knows nothing of trees.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};

use super::chunk_buffer::{read_in_chunks, with_chunk_buffer, CHUNK};
use super::delta::{self, DeltaHeader};
use super::error::{CheckpointError, IoResultExt, Result};
use super::limits::{
    MAX_ATTACHMENT, MAX_DELTA_MEMORY, MAX_PATCH_RECORD, MAX_ZSTD_RATIO, ZSTD_WINDOW_LOG_MAX,
};
use super::manifest::{check_pack_table, ContentHash, Encoding, PackedBlob};
use super::patch::{overlay, patch_budget, record_len, Applier, DiffRegions, Patch, Region};

/// Files up to this size are read into memory once (hash, then compress only when the
/// blob is new); larger files are hashed in one streaming pass and compressed in a second
/// one only when new.
pub const STREAM_THRESHOLD: u64 = 4 << 20;
/// zstd level of content read into memory (up to [`STREAM_THRESHOLD`]). Object files, most
/// of a build directory, compress at level 1 about twice as fast as at level 3 to the same
/// size and decompress 1.7 times as fast (zstd's own benchmark over a project's 2,500
/// objects: 295 against 146 MB/s, 995 against 577 MB/s); source text takes 4–9% more bytes.
pub const ZSTD_LEVEL: i32 = 1;
/// zstd level of streamed (larger) content, compressed by zstd's own worker threads: a
/// relinked program or rebuilt archive is most of what a snapshot stores after a small
/// change, and one file cannot be spread over the snapshot's threads. Level 1 compresses
/// such files about twice as fast as level 3 for a tenth more bytes. (Which literals zstd
/// leaves uncompressed does not matter for the checkpoint's references: [`MASK`] hides the
/// store paths they hold.)
pub const STREAM_ZSTD_LEVEL: i32 = 1;
/// Blobs shorter than this are stored raw.
pub const RAW_BELOW: usize = 64;
/// Every byte of a pack is the encoding's byte XOR this (docs/checkpoint-format.md §5): an
/// ASCII byte becomes a byte above 0x7F, so the 32 characters of a store path's hash, which
/// Nix's scan for references looks for in an output's bytes, never stand in a pack as they
/// stand in the content (a raw blob, or the literals zstd stores uncompressed), and the
/// checkpoint references only what its manifest names.
pub const MASK: u8 = 0x80;

/// Applies [`MASK`] to `bytes` in place (it is its own inverse).
pub fn mask(bytes: &mut [u8]) {
    for b in bytes {
        *b ^= MASK;
    }
}

/// Masks what it writes on the way to `inner`: one write of `inner` per write it is given
/// (zstd's encoder writes whole output buffers, so no buffering is needed below it).
struct MaskingWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.clear();
        self.buf.extend_from_slice(data);
        mask(&mut self.buf);
        self.inner.write_all(&self.buf)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The directory of the packs inside a checkpoint.
pub const PACKS: &str = "packs";

/// The path of layer `layer`'s pack, relative to the checkpoint.
pub fn pack_rel_path(layer: u32) -> String {
    format!("{PACKS}/{layer:03}.pack")
}

/// Locks a mutex whose data stays valid even if a thread panicked holding it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a stored blob is: the layer whose pack holds it, and its range there.
#[derive(Clone, Debug)]
struct Located {
    pack: u32,
    blob: PackedBlob,
    /// For a blob of the open pack whose stored bytes are elsewhere until the seal copies
    /// them into place (at `blob.offset`): another checkpoint's pack for an imported blob,
    /// the writer's temporary file for a streamed one.
    borrowed: Option<Arc<Borrowed>>,
}

/// A file that blobs of the open pack are read from until the seal.
#[derive(Debug)]
struct Borrowed {
    file: Arc<File>,
    path: PathBuf,
    /// The writer's own temporary file (a streamed content, compressed): removed once the
    /// seal has copied it. Another checkpoint's pack is only read.
    temporary: bool,
}

#[derive(Debug)]
struct Shared {
    /// The checkpoint directory.
    dir: PathBuf,
    located: RwLock<HashMap<ContentHash, Located>>,
    /// Pack files opened so far (a writer's current pack is registered while it grows).
    files: Mutex<HashMap<u32, Arc<File>>>,
    /// Blobs read in full and found to hash to their names in this process, with their
    /// lengths: [`BlobStore::verify_once`] does not decode them again. Every read still
    /// checks what it reads.
    verified: Mutex<HashMap<ContentHash, u64>>,
    /// The whole blobs the delta blobs of this store stand on, with their sizes, from the
    /// delta records as they were when first asked (a record that does not read is left
    /// out: reading its delta reports it).
    delta_bases: OnceLock<HashMap<ContentHash, u64>>,
}

/// Read access to the blobs of a checkpoint. Clones share their tables and open files.
#[derive(Clone, Debug)]
pub struct BlobStore {
    shared: Arc<Shared>,
}

/// Reads the byte range `[pos, end)` of a pack, unmasked.
struct RangeReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = self.file.read_at(&mut buf[..n], self.pos)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the pack ends inside the blob",
            ));
        }
        mask(&mut buf[..got]);
        self.pos += got as u64;
        Ok(got)
    }
}

impl BlobStore {
    /// The blobs of the checkpoint at `dir`, from each layer's blob table (layer index,
    /// table). A hash stored by two layers is refused.
    pub fn open<'a>(
        dir: &Path,
        tables: impl IntoIterator<Item = (u32, &'a [PackedBlob])>,
    ) -> Result<Self> {
        let store = BlobStore::empty(dir);
        {
            let mut located = store
                .shared
                .located
                .write()
                .unwrap_or_else(|p| p.into_inner());
            for (pack, table) in tables {
                for blob in table {
                    if located
                        .insert(
                            blob.blake3,
                            Located {
                                pack,
                                blob: *blob,
                                borrowed: None,
                            },
                        )
                        .is_some()
                    {
                        return Err(CheckpointError::Index {
                            file: dir.join(pack_rel_path(pack)),
                            problem: format!("blob {} is stored by two layers", blob.blake3),
                        });
                    }
                }
            }
        }
        Ok(store)
    }

    fn empty(dir: &Path) -> Self {
        BlobStore {
            shared: Arc::new(Shared {
                dir: dir.to_owned(),
                located: RwLock::new(HashMap::new()),
                files: Mutex::new(HashMap::new()),
                verified: Mutex::new(HashMap::new()),
                delta_bases: OnceLock::new(),
            }),
        }
    }

    /// The packs directory (for messages).
    pub fn dir(&self) -> PathBuf {
        self.shared.dir.join(PACKS)
    }

    /// The path of layer `layer`'s pack.
    pub fn pack_path(&self, layer: u32) -> PathBuf {
        self.shared.dir.join(pack_rel_path(layer))
    }

    fn located(&self, hash: &ContentHash) -> Option<Located> {
        self.shared
            .located
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .cloned()
    }

    /// The layer whose pack holds `hash`, and where.
    pub fn location(&self, hash: &ContentHash) -> Option<(u32, PackedBlob)> {
        self.located(hash).map(|l| (l.pack, l.blob))
    }

    /// True if some pack table lists `hash` (content not checked).
    pub fn contains(&self, hash: &ContentHash) -> bool {
        self.located(hash).is_some()
    }

    /// Every stored hash, sorted.
    pub fn hashes(&self) -> Vec<ContentHash> {
        let mut v: Vec<ContentHash> = self
            .shared
            .located
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        v.sort();
        v
    }

    fn register(&self, pack: u32, blob: PackedBlob) {
        self.insert(Located {
            pack,
            blob,
            borrowed: None,
        });
    }

    /// Makes `blob` (its offset in `from`) readable from `from` until the seal of `pack`.
    fn register_borrowed(&self, pack: u32, blob: PackedBlob, from: Arc<Borrowed>) {
        self.insert(Located {
            pack,
            blob,
            borrowed: Some(from),
        });
    }

    fn insert(&self, l: Located) {
        self.shared
            .located
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(l.blob.blake3, l);
    }

    /// The file holding `l`'s stored bytes (for messages).
    fn path_of(&self, l: &Located) -> PathBuf {
        match &l.borrowed {
            Some(b) => b.path.clone(),
            None => self.pack_path(l.pack),
        }
    }

    fn register_file(&self, pack: u32, file: Arc<File>) {
        lock(&self.shared.files).insert(pack, file);
    }

    fn pack_file(&self, pack: u32) -> Result<Arc<File>> {
        if let Some(f) = lock(&self.shared.files).get(&pack) {
            return Ok(f.clone());
        }
        let path = self.pack_path(pack);
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .at("open pack", &path)?;
        if !file.metadata().at("stat", &path)?.file_type().is_file() {
            return Err(CheckpointError::UnexpectedFile {
                path,
                problem: "a pack must be a regular file",
            });
        }
        let file = Arc::new(file);
        lock(&self.shared.files).insert(pack, file.clone());
        Ok(file)
    }

    fn find(&self, hash: &ContentHash) -> Result<Located> {
        self.located(hash)
            .ok_or_else(|| CheckpointError::BlobMissing {
                hash: hash.to_hex(),
                dir: self.dir(),
            })
    }

    /// The error for blob `hash`, stored at `l`, whose stored bytes are not what they claim
    /// to be, given the problem in words.
    fn corrupt_blob<'a>(
        &self,
        hash: &'a ContentHash,
        l: &Located,
    ) -> impl Fn(String) -> CheckpointError + 'a {
        let path = self.path_of(l);
        move |problem| CheckpointError::BlobCorrupt {
            path: path.clone(),
            problem: format!("blob {hash}: {problem}"),
        }
    }

    /// The reader of `hash`'s stored bytes; a missing pack is a missing blob.
    fn range(&self, hash: &ContentHash) -> Result<(RangeReader, Located)> {
        let l = self.find(hash)?;
        let file = match &l.borrowed {
            Some(b) => Ok(b.file.clone()),
            None => self.pack_file(l.pack),
        };
        let file = match file {
            Ok(f) => f,
            Err(CheckpointError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(CheckpointError::BlobMissing {
                    hash: hash.to_hex(),
                    dir: self.dir(),
                })
            }
            Err(e) => return Err(e),
        };
        let reader = RangeReader {
            file,
            pos: l.blob.offset,
            end: l.blob.offset + l.blob.length,
        };
        Ok((reader, l))
    }

    /// The stored bytes of `hash` (compressed or raw, as its encoding says; unmasked),
    /// unverified.
    /// Holds them in memory: at most the blob table's length, and never more than the pack
    /// file holds.
    pub fn stored_bytes(&self, hash: &ContentHash) -> Result<(Vec<u8>, Encoding)> {
        let (mut reader, l) = self.range(hash)?;
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .map_err(|e| self.corrupt_blob(hash, &l)(e.to_string()))?;
        Ok((out, l.blob.encoding))
    }

    /// The most content `hash`'s stored bytes can hold with `expect` (checked against the
    /// blob table before anything is read): a raw blob is its stored length, a zstd one at
    /// most [`MAX_ZSTD_RATIO`] times it.
    fn bound(&self, hash: &ContentHash, l: &Located, expect: Expect) -> Result<u64> {
        let corrupt = self.corrupt_blob(hash, l);
        let stored = l.blob.length;
        let implied = match l.blob.encoding {
            Encoding::Raw => stored,
            Encoding::Zstd => stored.saturating_mul(MAX_ZSTD_RATIO),
            // Bounded by their records' sizes instead (`stream_patched`, `stream_delta`).
            Encoding::Patch | Encoding::Delta => {
                return Err(corrupt(format!(
                    "a {} blob has no stored bound",
                    l.blob.encoding.name()
                )))
            }
        };
        match expect {
            Expect::Exactly(n)
                if n > implied || (l.blob.encoding == Encoding::Raw && n != stored) =>
            {
                Err(corrupt(format!(
                    "{stored} stored bytes ({}) cannot hold the {n} bytes claimed for it",
                    l.blob.encoding.name()
                )))
            }
            Expect::AtMost(n) if l.blob.encoding == Encoding::Raw && stored > n => Err(corrupt(
                format!("{stored} bytes stored raw, more than the limit of {n} for its use"),
            )),
            Expect::Exactly(n) | Expect::AtMost(n) => Ok(n.min(implied)),
        }
    }

    /// Streams the content of `hash` into `sink` in chunks, then checks that it hashes to
    /// `hash`. Returns the content length. Decompression stops as soon as the content
    /// passes what `expect` allows (or what the stored length can hold), so a blob that
    /// inflates beyond its claim costs at most one chunk more than the claim; a claim the
    /// stored length cannot hold is refused before anything is read. The sink sees
    /// unverified data: callers write only into places they discard on error.
    ///
    /// A blob a delta of this store stands on is kept in memory too, with the bases deltas
    /// read, for the reads of those deltas: a restore reads the base, the check of what no
    /// restore read and the snapshot's next delta read the deltas.
    pub fn stream(
        &self,
        hash: &ContentHash,
        expect: Expect,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        // Only a read that claims the size the delta records give (a file's content): a
        // buffer of that size, at most the largest base, is taken before anything is read.
        let Some(size) = self
            .delta_base_size(hash)
            .filter(|&size| expect == Expect::Exactly(size))
            .filter(|_| DecodedBases::get(hash).is_none())
        else {
            return self.stream_verified(hash, expect, sink);
        };
        // Decoded into the kept buffer and verified, then passed on from it: one copy. The
        // buffer counts in the delta memory until it joins the kept bases.
        let memory = DeltaMemory::hold(size);
        let mut kept = Vec::with_capacity(size as usize);
        let n = self.stream_verified(hash, expect, |chunk| {
            kept.extend_from_slice(chunk);
            Ok(())
        })?;
        for chunk in kept.chunks(CHUNK) {
            sink(chunk)?;
        }
        drop(memory);
        if n == size {
            DecodedBases::keep(*hash, Arc::new(kept));
        }
        Ok(n)
    }

    /// [`BlobStore::stream`] without keeping a delta's base in memory.
    fn stream_verified(
        &self,
        hash: &ContentHash,
        expect: Expect,
        sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let n = self.stream_once(hash, expect, sink)?;
        lock(&self.shared.verified).insert(*hash, n);
        Ok(n)
    }

    /// The size of `hash` when a delta blob of this store stands on it (and the size is one
    /// a base may have).
    fn delta_base_size(&self, hash: &ContentHash) -> Option<u64> {
        let bases = self.shared.delta_bases.get_or_init(|| {
            let deltas: Vec<ContentHash> = self
                .shared
                .located
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .filter(|l| l.blob.encoding == Encoding::Delta)
                .map(|l| l.blob.blake3)
                .collect();
            deltas
                .iter()
                .filter_map(|h| self.delta_of(h).ok().flatten())
                .filter(|d| d.base_size <= super::limits::MAX_DELTA_CONTENT)
                .map(|d| (d.base, d.base_size))
                .collect()
        });
        bases.get(hash).copied()
    }

    /// [`BlobStore::stream`], without recording the blob as verified.
    fn stream_once(
        &self,
        hash: &ContentHash,
        expect: Expect,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let (range, l) = self.range(hash)?;
        match l.blob.encoding {
            Encoding::Patch => return self.stream_patched(hash, expect, range, &l, &mut sink),
            Encoding::Delta => return self.stream_delta(hash, expect, range, &l, &mut sink),
            Encoding::Zstd | Encoding::Raw => {}
        }
        let limit = self.bound(hash, &l, expect)?;
        let corrupt = self.corrupt_blob(hash, &l);
        match l.blob.encoding {
            Encoding::Raw => pump(range, hash, expect, limit, &corrupt, &mut sink),
            Encoding::Zstd => DCTX.with(|cell| {
                let input = io::BufReader::with_capacity(zstd::zstd_safe::DCtx::in_size(), range);
                match cell.try_borrow_mut() {
                    Ok(mut slot) => {
                        if slot.is_none() {
                            let mut dctx = zstd::zstd_safe::DCtx::create();
                            dctx.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(
                                ZSTD_WINDOW_LOG_MAX,
                            ))
                            .map_err(|c| {
                                corrupt(format!("zstd: {}", zstd::zstd_safe::get_error_name(c)))
                            })?;
                            *slot = Some(dctx);
                        }
                        let dctx = slot.as_mut().expect("just set");
                        let d = zstd::stream::read::Decoder::with_context(input, dctx);
                        pump(d, hash, expect, limit, &corrupt, &mut sink)
                    }
                    // A sink that streams another blob on this thread: a context of its own.
                    Err(_) => {
                        let mut d = zstd::stream::read::Decoder::with_buffer(input)
                            .map_err(|e| corrupt(format!("zstd: {e}")))?;
                        d.window_log_max(ZSTD_WINDOW_LOG_MAX)
                            .map_err(|e| corrupt(format!("zstd: {e}")))?;
                        pump(d, hash, expect, limit, &corrupt, &mut sink)
                    }
                }
            }),
            Encoding::Patch | Encoding::Delta => unreachable!("streamed above"),
        }
    }

    /// The record of a patched blob, checked before anything else is read: at most
    /// [`MAX_PATCH_RECORD`] bytes, well formed, of a content that `expect` allows.
    fn patch_record(
        &self,
        mut range: RangeReader,
        l: &Located,
        expect: Expect,
        corrupt: &dyn Fn(String) -> CheckpointError,
    ) -> Result<Patch> {
        if l.blob.length > MAX_PATCH_RECORD {
            return Err(corrupt(format!(
                "a patch record of {} bytes, more than the limit of {MAX_PATCH_RECORD}",
                l.blob.length
            )));
        }
        let mut record = Vec::with_capacity(l.blob.length as usize);
        range
            .read_to_end(&mut record)
            .map_err(|e| corrupt(e.to_string()))?;
        let patch = Patch::parse(&record).map_err(corrupt)?;
        expect.check_recorded(patch.size, corrupt)?;
        Ok(patch)
    }

    /// Checks that `base`, the blob the patch or delta stored at `own` is made from, is
    /// stored here, by the same layer or an earlier one, in an encoding it may stand on
    /// ([`Encoding::may_stand_on`]).
    fn check_base(
        &self,
        base: &ContentHash,
        own: &Located,
        corrupt: &dyn Fn(String) -> CheckpointError,
    ) -> Result<()> {
        let at = self
            .located(base)
            .ok_or_else(|| corrupt(format!("its base {base} is not stored")))?;
        if !own.blob.encoding.may_stand_on(at.blob.encoding) {
            return Err(corrupt(format!(
                "its base {base} is {} too",
                made_of_another(at.blob.encoding)
            )));
        }
        if at.pack > own.pack {
            return Err(corrupt(format!(
                "its base {base} is stored by layer {}, after its own layer {}",
                at.pack, own.pack
            )));
        }
        Ok(())
    }

    /// [`BlobStore::stream`] of a patched blob: its base streamed (and verified) with the
    /// record's regions laid over it, the result hashed. The base must be stored by the same
    /// layer or an earlier one, and must not be patched itself (a delta may be).
    fn stream_patched(
        &self,
        hash: &ContentHash,
        expect: Expect,
        range: RangeReader,
        l: &Located,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let corrupt = self.corrupt_blob(hash, l);
        let patch = self.patch_record(range, l, expect, &corrupt)?;
        self.check_base(&patch.base, l, &corrupt)?;
        let mut hasher = blake3::Hasher::new();
        let mut applier = Applier::new(&patch.regions);
        let mut buf = Vec::new();
        let n = self.stream(&patch.base, Expect::Exactly(patch.size), |c| {
            buf.clear();
            buf.extend_from_slice(c);
            applier.apply(&mut buf);
            hasher.update(&buf);
            sink(&buf)
        })?;
        let found = ContentHash::from(hasher.finalize());
        if found != *hash {
            return Err(corrupt(format!("content hashes to {found}")));
        }
        Ok(n)
    }

    /// The header of a delta blob's record, checked before anything else is read: sizes
    /// within [`super::limits::MAX_DELTA_CONTENT`], a frame no longer than the content, a content that
    /// `expect` allows.
    fn delta_header(
        &self,
        range: &mut RangeReader,
        l: &Located,
        expect: Expect,
        corrupt: &dyn Fn(String) -> CheckpointError,
    ) -> Result<DeltaHeader> {
        let mut head = Vec::with_capacity(delta::HEADER);
        (&mut *range)
            .take(delta::HEADER as u64)
            .read_to_end(&mut head)
            .map_err(|e| corrupt(format!("its delta record: {e}")))?;
        let header = DeltaHeader::parse(&head).map_err(corrupt)?;
        let frame = l.blob.length.saturating_sub(delta::HEADER as u64);
        if frame > header.size {
            return Err(corrupt(format!(
                "a delta frame of {frame} bytes, longer than the {} bytes of its content",
                header.size
            )));
        }
        expect.check_recorded(header.size, corrupt)?;
        Ok(header)
    }

    /// [`BlobStore::stream`] of a delta blob: its base read (and verified) into memory, the
    /// frame decoded against it into exactly the record's size, the result hashed before
    /// `sink` sees any of it. The base must be stored by the same layer or an earlier one,
    /// and must be whole. Bases, frames and contents held at once stay within
    /// [`MAX_DELTA_MEMORY`] ([`DeltaMemory`]).
    fn stream_delta(
        &self,
        hash: &ContentHash,
        expect: Expect,
        mut range: RangeReader,
        l: &Located,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let corrupt = self.corrupt_blob(hash, l);
        let header = self.delta_header(&mut range, l, expect, &corrupt)?;
        self.check_base(&header.base, l, &corrupt)?;
        let frame_len = l.blob.length - delta::HEADER as u64;
        let _memory = DeltaMemory::hold(header.base_size + header.size + frame_len);
        let mut frame = Vec::with_capacity(frame_len as usize);
        range
            .read_to_end(&mut frame)
            .map_err(|e| corrupt(format!("its delta record: {e}")))?;
        let base_content = self.read_base(&header.base, header.base_size)?;
        let content = delta::decode(&base_content, &frame, header.size).map_err(&corrupt)?;
        drop((base_content, frame));
        let found = ContentHash::of(&content);
        if found != *hash {
            return Err(corrupt(format!("content hashes to {found}")));
        }
        for chunk in content.chunks(CHUNK) {
            sink(chunk)?;
        }
        Ok(header.size)
    }

    /// The header of `hash`'s record when it is stored as a delta blob (`None` for another
    /// encoding), checked as a read would check it.
    pub fn delta_of(&self, hash: &ContentHash) -> Result<Option<DeltaHeader>> {
        let (mut range, l) = self.range(hash)?;
        if l.blob.encoding != Encoding::Delta {
            return Ok(None);
        }
        let corrupt = self.corrupt_blob(hash, &l);
        self.delta_header(&mut range, &l, Expect::AtMost(u64::MAX), &corrupt)
            .map(Some)
    }

    /// What blob `hash` is made out of when it is a patch or a delta (its record, checked
    /// as a read would check it); `None` for a whole blob.
    pub fn made_from(&self, hash: &ContentHash) -> Result<Option<MadeFrom>> {
        Ok(match self.find(hash)?.blob.encoding {
            Encoding::Patch => self.patch_of(hash)?.map(|p| MadeFrom {
                encoding: Encoding::Patch,
                base: p.base,
                base_size: p.size,
                size: p.size,
            }),
            Encoding::Delta => self.delta_of(hash)?.map(|d| MadeFrom {
                encoding: Encoding::Delta,
                base: d.base,
                base_size: d.base_size,
                size: d.size,
            }),
            Encoding::Zstd | Encoding::Raw => None,
        })
    }

    /// The whole blob content `hash` (of `size` bytes) is made from, and its size: itself
    /// when it is whole, else its base, or its base's base when a patch stands on a delta
    /// (the longest chain a checkpoint may hold).
    pub fn whole_base(&self, (hash, size): (ContentHash, u64)) -> Result<(ContentHash, u64)> {
        let mut at = (hash, size);
        for _ in 0..2 {
            match self.made_from(&at.0)? {
                Some(m) => at = (m.base, m.base_size),
                None => return Ok(at),
            }
        }
        match self.encoding_of(&at.0) {
            Some(e) if e.is_whole() => Ok(at),
            _ => Err(CheckpointError::BlobCorrupt {
                path: self.dir(),
                problem: format!("blob {hash}: made from a chain of more than two blobs"),
            }),
        }
    }

    /// How blob `hash` is stored here, when it is.
    pub fn encoding_of(&self, hash: &ContentHash) -> Option<Encoding> {
        self.located(hash).map(|l| l.blob.encoding)
    }

    /// The record of `hash` when it is stored as a patched blob (`None` for another
    /// encoding), checked as a read would check it.
    pub fn patch_of(&self, hash: &ContentHash) -> Result<Option<Patch>> {
        let (range, l) = self.range(hash)?;
        if l.blob.encoding != Encoding::Patch {
            return Ok(None);
        }
        let corrupt = self.corrupt_blob(hash, &l);
        self.patch_record(range, &l, Expect::AtMost(u64::MAX), &corrupt)
            .map(Some)
    }

    /// Reads and verifies a whole blob into memory; it must fit `expect`. Memory grows with
    /// the content actually read, never with a claim.
    pub fn read_expecting(&self, hash: &ContentHash, expect: Expect) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.stream(hash, expect, |c| {
            out.extend_from_slice(c);
            Ok(())
        })?;
        Ok(out)
    }

    /// The content of a delta's base `hash` (stored here), of exactly `size` bytes, which the
    /// caller has bounded (at most [`super::limits::MAX_DELTA_CONTENT`]): read and verified
    /// into memory allocated once, or taken from [`DecodedBases`] when this process has read
    /// it already (a base is read for each delta that stands on it, for the base check, the
    /// snapshot's comparison and the next delta made over it).
    fn read_base(&self, hash: &ContentHash, size: u64) -> Result<Arc<Vec<u8>>> {
        debug_assert!(size <= super::limits::MAX_DELTA_CONTENT);
        if let Some(content) = DecodedBases::get(hash).filter(|c| c.len() as u64 == size) {
            return Ok(content);
        }
        let mut out = Vec::with_capacity(size as usize);
        self.stream_verified(hash, Expect::Exactly(size), |c| {
            out.extend_from_slice(c);
            Ok(())
        })?;
        let out = Arc::new(out);
        DecodedBases::keep(*hash, out.clone());
        Ok(out)
    }

    /// Reads and verifies a whole blob of unknown size into memory (an attachment): at most
    /// [`MAX_ATTACHMENT`] bytes, a longer one is an error.
    pub fn read(&self, hash: &ContentHash) -> Result<Vec<u8>> {
        self.read_expecting(hash, Expect::AtMost(MAX_ATTACHMENT))
    }

    /// Verifies one blob against `expect`; returns its content length.
    pub fn verify(&self, hash: &ContentHash, expect: Expect) -> Result<u64> {
        self.stream(hash, expect, |_| Ok(()))
    }

    /// [`BlobStore::verify`], except for a blob this process has read in full and verified
    /// already with a length `expect` allows: that one is not read again (a checkpoint's
    /// whole check, where a delta's base is read with each delta and on its own). Not for a
    /// caller that then copies the stored bytes.
    pub fn verify_once(&self, hash: &ContentHash, expect: Expect) -> Result<u64> {
        let known = lock(&self.shared.verified).get(hash).copied();
        match (known, expect) {
            (Some(n), Expect::Exactly(m)) if n == m => Ok(n),
            (Some(n), Expect::AtMost(m)) if n <= m => Ok(n),
            _ => self.stream(hash, expect, |_| Ok(())),
        }
    }
}

/// How a blob that is not whole is named in messages.
fn made_of_another(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Patch => "a patched blob",
        Encoding::Delta => "a delta blob",
        Encoding::Zstd | Encoding::Raw => "a whole blob",
    }
}

/// Delta bases this process has read and verified, newest last, at most
/// [`DECODED_BASES_BYTES`] in all: the same base is read for every delta made over it or
/// decoded from it, from whichever checkpoint holds it (content is named by its hash). Only
/// [`BlobStore::read_base`] uses them, for a base the store holds as a whole blob: every other
/// read decodes what the store holds.
struct DecodedBases {
    entries: std::collections::VecDeque<(ContentHash, Arc<Vec<u8>>)>,
    bytes: u64,
}

/// The most [`DecodedBases`] keeps: the largest base a delta may have.
const DECODED_BASES_BYTES: u64 = super::limits::MAX_DELTA_CONTENT;

static DECODED_BASES: Mutex<DecodedBases> = Mutex::new(DecodedBases {
    entries: std::collections::VecDeque::new(),
    bytes: 0,
});

impl DecodedBases {
    fn get(hash: &ContentHash) -> Option<Arc<Vec<u8>>> {
        lock(&DECODED_BASES)
            .entries
            .iter()
            .find(|(h, _)| h == hash)
            .map(|(_, c)| c.clone())
    }

    /// Keeps `content`, dropping the oldest bases beyond the limit.
    fn keep(hash: ContentHash, content: Arc<Vec<u8>>) {
        let len = content.len() as u64;
        if len > DECODED_BASES_BYTES {
            return;
        }
        let mut cache = lock(&DECODED_BASES);
        if cache.entries.iter().any(|(h, _)| *h == hash) {
            return;
        }
        while cache.bytes + len > DECODED_BASES_BYTES {
            let Some((_, old)) = cache.entries.pop_front() else {
                break;
            };
            cache.bytes -= old.len() as u64;
        }
        cache.bytes += len;
        cache.entries.push_back((hash, content));
    }
}

/// Drops `hash` from the delta bases this process keeps (tests of what reads them).
#[cfg(test)]
pub(crate) fn forget_decoded_base(hash: &ContentHash) {
    let mut cache = lock(&DECODED_BASES);
    if let Some(at) = cache.entries.iter().position(|(h, _)| h == hash) {
        if let Some((_, content)) = cache.entries.remove(at) {
            cache.bytes -= content.len() as u64;
        }
    }
}

/// Bytes the delta blobs being decoded or encoded hold now (bases, frames and contents), in
/// the whole process, and the signal that some were freed.
static DELTA_MEMORY: Mutex<u64> = Mutex::new(0);
static DELTA_MEMORY_FREED: Condvar = Condvar::new();

thread_local! {
    /// Whether this thread holds [`DELTA_MEMORY`] already.
    static HOLDS_DELTA_MEMORY: Cell<bool> = const { Cell::new(false) };
}

/// A share of [`MAX_DELTA_MEMORY`] held while one delta is decoded or encoded: a thread
/// waits until the share fits beside what other threads hold. A thread that holds a share
/// already (a sink that reads another delta) takes the next without waiting, since it would
/// wait for itself.
struct DeltaMemory {
    bytes: u64,
    nested: bool,
}

impl DeltaMemory {
    fn hold(bytes: u64) -> Self {
        let bytes = bytes.min(MAX_DELTA_MEMORY);
        let nested = HOLDS_DELTA_MEMORY.with(|h| h.replace(true));
        let mut used = lock(&DELTA_MEMORY);
        while !nested && *used + bytes > MAX_DELTA_MEMORY {
            used = DELTA_MEMORY_FREED
                .wait(used)
                .unwrap_or_else(|p| p.into_inner());
        }
        *used += bytes;
        DeltaMemory { bytes, nested }
    }
}

impl Drop for DeltaMemory {
    fn drop(&mut self) {
        *lock(&DELTA_MEMORY) -= self.bytes;
        DELTA_MEMORY_FREED.notify_all();
        HOLDS_DELTA_MEMORY.with(|h| h.set(self.nested));
    }
}

/// Runs `stream`, a read that passes chunks to a sink returning `Result` ([`BlobStore::stream`],
/// a staged file read back), with a sink that hands each chunk to `sink` until it returns
/// [`ControlFlow::Break`]. The stop reaches `stream` as an error and comes back as
/// `Ok(None)`: nothing more was read, and the content is not verified (the caller decided on
/// what it saw). `Ok(Some(_))` is a stream read to its end, `Err` one that failed.
pub(crate) fn until_stopped<T>(
    sink: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    stream: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<T>,
) -> Result<Option<T>> {
    let stopped = Cell::new(false);
    let result = stream(&mut |chunk| match sink(chunk) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => {
            stopped.set(true);
            Err(CheckpointError::BlobCorrupt {
                path: PathBuf::new(),
                problem: "read no further: the reader stopped".to_owned(),
            })
        }
    });
    if stopped.get() {
        return Ok(None);
    }
    result.map(Some)
}

thread_local! {
    /// This thread's zstd decompression context, reused blob after blob (creating one per
    /// blob was a tenth of a restore's CPU time); its window limit is set once.
    static DCTX: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// The loop of [`BlobStore::stream`] over the decoded content: sink, length limit, hash.
fn pump(
    mut reader: impl Read,
    hash: &ContentHash,
    expect: Expect,
    limit: u64,
    corrupt: &dyn Fn(String) -> CheckpointError,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    let mut hasher = blake3::Hasher::new();
    let total = with_chunk_buffer(|buf| {
        let mut total = 0u64;
        loop {
            // Never more than the bound plus one byte is asked of the decoder.
            let want = usize::try_from((limit - total).saturating_add(1))
                .map_or(buf.len(), |w| w.min(buf.len()));
            let n = match reader.read(&mut buf[..want]) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(corrupt(e.to_string())),
            };
            total += n as u64;
            if total > limit {
                return Err(corrupt(match expect {
                    Expect::Exactly(n) => {
                        format!("the content is longer than the {n} bytes claimed for it")
                    }
                    Expect::AtMost(n) => {
                        format!("the content is longer than the limit of {n} bytes for its use")
                    }
                }));
            }
            hasher.update(&buf[..n]);
            sink(&buf[..n])?;
        }
    })?;
    if let Expect::Exactly(n) = expect {
        if total != n {
            return Err(corrupt(format!(
                "the content is {total} bytes but {n} are claimed for it"
            )));
        }
    }
    let found = ContentHash::from(hasher.finalize());
    if found != *hash {
        return Err(corrupt(format!("content hashes to {found}")));
    }
    Ok(total)
}

/// What a patched or delta blob is made out of ([`BlobStore::made_from`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MadeFrom {
    /// Its own encoding: `patch` or `delta`.
    pub encoding: Encoding,
    /// The blob it stands on.
    pub base: ContentHash,
    /// That blob's content size.
    pub base_size: u64,
    /// Its own content size.
    pub size: u64,
}

/// What a reader knows of a blob's content length before reading it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Expect {
    /// The size a file entry claims: the content must be exactly this long.
    Exactly(u64),
    /// A limit for its use (an attachment read into memory).
    AtMost(u64),
}

impl Expect {
    /// What a blob used as `size` bytes of a file entry (`Some`) or as an attachment
    /// (`None`) must be.
    pub fn for_use(size: Option<u64>) -> Self {
        size.map_or(Expect::AtMost(MAX_ATTACHMENT), Expect::Exactly)
    }

    /// Checks the content size a patch or delta record gives against this claim.
    fn check_recorded(self, size: u64, corrupt: &dyn Fn(String) -> CheckpointError) -> Result<()> {
        match self {
            Expect::Exactly(n) if n != size => Err(corrupt(format!(
                "the content is {size} bytes but {n} are claimed for it"
            ))),
            Expect::AtMost(n) if size > n => Err(corrupt(format!(
                "the content is longer than the limit of {n} bytes for its use"
            ))),
            _ => Ok(()),
        }
    }
}

/// The pack being filled: the blobs of the next layer to be written.
#[derive(Debug, Default)]
struct OpenPack {
    layer: u32,
    /// Created with the first blob, in the temporary directory.
    file: Option<(Arc<File>, PathBuf)>,
    len: u64,
    blobs: Vec<PackedBlob>,
    /// Blobs whose stored bytes are still elsewhere (offsets there): imported ones in
    /// another checkpoint's pack, streamed ones in their temporary file. The seal copies
    /// them once, straight into their place.
    borrowed: Vec<(PackedBlob, Arc<Borrowed>)>,
}

/// Write access to a new checkpoint's blobs; safe to share between threads. New blobs are
/// appended to the pack of the next layer, which [`BlobWriter::seal`] moves into place when
/// that layer is written.
#[derive(Debug)]
pub struct BlobWriter {
    store: BlobStore,
    tmp_dir: PathBuf,
    known: Mutex<HashSet<ContentHash>>,
    pack: Mutex<OpenPack>,
    counter: AtomicU64,
    /// zstd worker threads for streamed content. zstd's multithreaded output is the same
    /// for any number of workers from 1 up, so packs do not depend on the machine.
    zstd_workers: u32,
}

/// Earlier contents [`BlobWriter::put_file_with`] may store a new content from.
///
/// From the earlier checkpoint a build continues (`base`): the same content, its stored
/// bytes copied (verified) instead of compressed again; or the content the same path held
/// there, the new one stored as a patch over it when they are as long and differ in a few
/// bytes (a stripped program that names a moved output path). Then, for a content of 1 MiB
/// and more, a delta ([`super::delta`]) of the content the path held there or in this
/// checkpoint's previous state (`here`): a relinked program, a program stripped after it was
/// installed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Prior<'a> {
    /// The earlier checkpoint's blobs, and the content the file's path held there with its
    /// size.
    pub base: Option<(&'a BlobStore, Option<(ContentHash, u64)>)>,
    /// The content the file's path held in this checkpoint's previous state, and its size.
    pub here: Option<(ContentHash, u64)>,
}

/// A new content, compared with a stored one by [`diff_with_stored`].
enum NewContent<'a> {
    Memory(&'a [u8]),
    /// The first `size` bytes of an open file.
    File {
        file: &'a File,
        path: &'a Path,
        size: u64,
    },
}

impl NewContent<'_> {
    fn len(&self) -> u64 {
        match self {
            NewContent::Memory(data) => data.len() as u64,
            NewContent::File { size, .. } => *size,
        }
    }
}

/// The regions where `new` differs from blob `base` of `from` (which must be as long), when
/// they fit a patch record ([`DiffRegions::for_content`]); `None` when they do not, and when
/// the stored blob is not what it claims (the caller stores the content whole: an earlier
/// checkpoint is untrusted). Reading stops as soon as the record would pass its budget. A
/// file that no longer hashes to `hash`, the hash the caller read it with, changed during the
/// snapshot ([`CheckpointError::ChangedDuringSnapshot`]).
fn diff_with_stored(
    from: &BlobStore,
    base: &ContentHash,
    new: &NewContent<'_>,
    hash: &ContentHash,
) -> Result<Option<Vec<Region>>> {
    let size = new.len();
    let Some(mut diff) = DiffRegions::for_content(size) else {
        return Ok(None);
    };
    let mut hasher = blake3::Hasher::new();
    let mut pos = 0u64;
    let mut buf = Vec::new();
    let mut failed_read = None;
    let mut sink = |old: &[u8]| {
        let end = pos + old.len() as u64;
        let next = match new {
            NewContent::Memory(data) => match data.get(pos as usize..end as usize) {
                Some(next) => next,
                None => return ControlFlow::Break(()),
            },
            NewContent::File { file, path, size } => {
                if end > *size {
                    return ControlFlow::Break(());
                }
                buf.resize(old.len(), 0);
                if let Err(e) = file.read_exact_at(&mut buf, pos) {
                    failed_read = Some(CheckpointError::io("read", path, e));
                    return ControlFlow::Break(());
                }
                hasher.update(&buf);
                &buf[..]
            }
        };
        diff.feed(old, next);
        pos = end;
        if diff.is_over() {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    };
    let streamed = until_stopped(&mut sink, |pass| {
        from.stream(base, Expect::Exactly(size), pass)
    });
    if let Some(e) = failed_read {
        return Err(e);
    }
    if !matches!(streamed, Ok(Some(_))) || pos != size {
        return Ok(None);
    }
    if let NewContent::File { path, .. } = new {
        if ContentHash::from(hasher.finalize()) != *hash {
            return Err(CheckpointError::ChangedDuringSnapshot {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(diff.finish())
}

/// What [`BlobWriter::put_file`] learnt about the file it read.
#[derive(Debug)]
pub struct PutFile {
    /// blake3 of the content.
    pub hash: ContentHash,
    /// Metadata from the open descriptor, taken before reading.
    pub metadata: fs::Metadata,
}

/// What [`BlobWriter::read_file_with`] learnt about the file it read.
#[derive(Debug)]
pub struct ReadFile {
    /// blake3 of the content.
    pub hash: ContentHash,
    /// Metadata from the open descriptor, taken before reading.
    pub metadata: fs::Metadata,
    /// The content, when it is new and was not stored yet ([`BlobWriter::put_held`]).
    pub held: Option<Vec<u8>>,
}

/// How many bytes of new contents [`BlobWriter::read_file_with`] may still hold in memory
/// instead of storing them at once; shared by the threads of one snapshot.
#[derive(Debug)]
pub struct Holding(AtomicU64);

impl Holding {
    /// Room for `bytes`.
    pub fn up_to(bytes: u64) -> Self {
        Holding(AtomicU64::new(bytes))
    }

    /// No room: every new content is stored as it is read.
    pub fn none() -> Self {
        Holding::up_to(0)
    }

    /// Takes room for `bytes`; false, taking none, when there is not that much left.
    fn take(&self, bytes: u64) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            })
            .is_ok()
    }
}

impl BlobWriter {
    /// A writer for the packs of the new checkpoint at `dir` (its `packs/` is created),
    /// using `tmp_dir` for the pack being filled and other partial files.
    pub fn open(dir: &Path, tmp_dir: &Path) -> Result<Self> {
        let packs = dir.join(PACKS);
        fs::create_dir_all(&packs).at("create dir", &packs)?;
        fs::create_dir_all(tmp_dir).at("create dir", tmp_dir)?;
        Ok(BlobWriter {
            store: BlobStore::empty(dir),
            tmp_dir: tmp_dir.to_owned(),
            known: Mutex::new(HashSet::new()),
            pack: Mutex::new(OpenPack::default()),
            counter: AtomicU64::new(0),
            zstd_workers: std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(1)),
        })
    }

    /// Sets the number of zstd worker threads for streamed content (at least 1).
    #[cfg(test)]
    pub(crate) fn set_zstd_workers(&mut self, workers: u32) {
        self.zstd_workers = workers.max(1);
    }

    /// The read side of the same checkpoint (it sees the pack being filled too).
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// True if `hash` is stored (or being stored by another thread).
    pub fn contains(&self, hash: &ContentHash) -> bool {
        lock(&self.known).contains(hash)
    }

    fn tmp_path(&self) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir.join(format!("{}-{n}", std::process::id()))
    }

    /// Claims `hash` for writing; false if it is already stored or claimed.
    fn claim(&self, hash: ContentHash) -> bool {
        lock(&self.known).insert(hash)
    }

    fn unclaim(&self, hash: &ContentHash) {
        lock(&self.known).remove(hash);
    }

    /// Reserves `len` bytes at the end of the open pack (creating it if needed); returns
    /// the pack's file, its layer and the offset.
    fn reserve(&self, len: u64) -> Result<(Arc<File>, u32, u64)> {
        let mut p = lock(&self.pack);
        let file = match &p.file {
            Some((f, _)) => f.clone(),
            None => {
                let path = self
                    .tmp_dir
                    .join(format!("pack-{}-{:03}", std::process::id(), p.layer));
                let f = fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .at("create", &path)?;
                let f = Arc::new(f);
                self.store.register_file(p.layer, f.clone());
                p.file = Some((f.clone(), path));
                f
            }
        };
        let offset = p.len;
        p.len += len;
        Ok((file, p.layer, offset))
    }

    /// Makes a blob whose bytes are in the pack visible to readers and to the table.
    fn publish(&self, layer: u32, blob: PackedBlob) {
        self.store.register(layer, blob);
        lock(&self.pack).blobs.push(blob);
    }

    /// Appends the encoding's bytes for `hash` (already claimed) to the open pack, masked.
    fn append(&self, hash: ContentHash, mut bytes: Vec<u8>, encoding: Encoding) -> Result<()> {
        mask(&mut bytes);
        let (file, layer, offset) = self.reserve(bytes.len() as u64)?;
        file.write_all_at(&bytes, offset)
            .at("write", &self.store.pack_path(layer))?;
        self.publish(
            layer,
            PackedBlob {
                blake3: hash,
                offset,
                length: bytes.len() as u64,
                encoding,
            },
        );
        Ok(())
    }

    /// Brings the stored bytes of `hash` in `from` (already claimed here) into the open pack
    /// as they are: they stay in `from`'s pack, readable from there, until the seal copies
    /// them into place (one copy, not one now and one at the seal).
    fn copy_stored(&self, from: &BlobStore, hash: &ContentHash) -> Result<()> {
        let (input, l) = from.range(hash)?;
        let borrowed = Arc::new(Borrowed {
            file: input.file,
            path: from.path_of(&l),
            temporary: false,
        });
        self.borrow(l.blob, borrowed);
        Ok(())
    }

    /// Makes the file at `path` (whole) the stored bytes of `hash` (already claimed) in the
    /// open pack. It stays where it is, readable from there, until the seal copies it into
    /// place and removes it: one copy of a large compressed stream, not one into the open
    /// pack and another at the seal.
    fn adopt_file(&self, hash: ContentHash, path: &Path, encoding: Encoding) -> Result<()> {
        let file = File::open(path).at("open", path)?;
        let length = file.metadata().at("stat", path)?.len();
        let blob = PackedBlob {
            blake3: hash,
            offset: 0,
            length,
            encoding,
        };
        let borrowed = Arc::new(Borrowed {
            file: Arc::new(file),
            path: path.to_owned(),
            temporary: true,
        });
        self.borrow(blob, borrowed);
        Ok(())
    }

    /// Adds `blob` to the open pack, its stored bytes at `blob.offset` of `from` until the
    /// seal.
    fn borrow(&self, blob: PackedBlob, from: Arc<Borrowed>) {
        let mut p = lock(&self.pack);
        self.store.register_borrowed(p.layer, blob, from.clone());
        p.borrowed.push((blob, from));
    }

    /// Closes the pack of layer `layer` (the next layer, about to be written): moves it to
    /// `packs/NNN.pack` with its blobs in hash order, whatever order threads appended them
    /// in, so equal sets of blobs always give byte-identical packs; returns its table and
    /// length. A layer that stored nothing gets no pack and an empty table.
    pub fn seal(&self, layer: u32) -> Result<(Vec<PackedBlob>, u64)> {
        let mut p = lock(&self.pack);
        if p.layer != layer {
            return Err(CheckpointError::OutOfSync {
                snapshotter: layer,
                writer: p.layer,
            });
        }
        let mut appended = std::mem::take(&mut p.blobs);
        let borrowed = std::mem::take(&mut p.borrowed);
        let len = p.len;
        let file = p.file.take();
        *p = OpenPack {
            layer: layer + 1,
            ..OpenPack::default()
        };
        drop(p);
        // The empty blob reserves no bytes, so another blob may reserve the same offset after
        // it and be published before it: at one offset it comes first.
        appended.sort_by_key(|b| (b.offset, b.length));
        let problem = match check_pack_table(&appended) {
            Ok(end) if end == len => None,
            Ok(end) => Some(format!("its blobs end at {end} of its {len} bytes")),
            Err(e) => Some(e),
        };
        if let (Some(problem), Some((_, tmp))) = (problem, &file) {
            return Err(CheckpointError::BlobCorrupt {
                path: tmp.clone(),
                problem: format!("a failed write left a hole in the pack: {problem}"),
            });
        }
        if appended.is_empty() && borrowed.is_empty() {
            if let Some((_, tmp)) = &file {
                fs::remove_file(tmp).at("remove", tmp)?;
            }
            return Ok((Vec::new(), 0));
        }
        // Where each blob's stored bytes are now: the open pack, or a borrowed one.
        let mut sources: HashMap<ContentHash, (PackedBlob, Option<&Borrowed>)> =
            appended.iter().map(|b| (b.blake3, (*b, None))).collect();
        sources.extend(
            borrowed
                .iter()
                .map(|(b, from)| (b.blake3, (*b, Some(&**from)))),
        );
        let mut sorted: Vec<PackedBlob> = sources.values().map(|(b, _)| *b).collect();
        sorted.sort_by_key(|b| b.blake3);
        let mut offset = 0;
        for b in &mut sorted {
            b.offset = offset;
            offset += b.length;
        }
        let dest = self.store.pack_path(layer);
        if let Some((_, tmp)) = &file {
            if borrowed.is_empty() && sorted == appended {
                fs::rename(tmp, &dest).at("rename pack into", &dest)?;
                return Ok((sorted, len));
            }
        }
        // Copy the blobs into a new file in hash order.
        let ordered = self
            .tmp_dir
            .join(format!("pack-{}-{layer:03}.sorted", std::process::id()));
        let out = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&ordered)
            .at("create", &ordered)?;
        let mut out = io::BufWriter::with_capacity(CHUNK, out);
        with_chunk_buffer(|buf| -> Result<()> {
            for b in &sorted {
                let (old, from) = sources[&b.blake3];
                let (input, path) = match (from, &file) {
                    (Some(from), _) => (&*from.file, &from.path),
                    (None, Some((f, tmp))) => (&**f, tmp),
                    (None, None) => unreachable!("a blob of the open pack without its file"),
                };
                let mut done = 0u64;
                while done < old.length {
                    let n = (old.length - done).min(CHUNK as u64) as usize;
                    input
                        .read_exact_at(&mut buf[..n], old.offset + done)
                        .map_err(|e| {
                            if e.kind() == io::ErrorKind::UnexpectedEof {
                                CheckpointError::BlobCorrupt {
                                    path: path.clone(),
                                    problem: format!(
                                        "blob {}: the pack ends inside the blob",
                                        b.blake3
                                    ),
                                }
                            } else {
                                CheckpointError::io("read", path, e)
                            }
                        })?;
                    out.write_all(&buf[..n]).at("write", &ordered)?;
                    done += n as u64;
                }
            }
            Ok(())
        })?;
        let out = out
            .into_inner()
            .map_err(|e| CheckpointError::io("write", &ordered, e.into_error()))?;
        fs::rename(&ordered, &dest).at("rename pack into", &dest)?;
        if let Some((_, tmp)) = &file {
            fs::remove_file(tmp).at("remove", tmp)?;
        }
        for (_, from) in borrowed.iter().filter(|(_, from)| from.temporary) {
            fs::remove_file(&from.path).at("remove", &from.path)?;
        }
        self.store.register_file(layer, Arc::new(out));
        for b in &sorted {
            self.store.register(layer, *b);
        }
        Ok((sorted, offset))
    }

    fn write_new(&self, hash: ContentHash, data: &[u8]) -> Result<()> {
        let compressed = if data.len() < RAW_BELOW {
            None
        } else if data.len() as u64 > STREAM_THRESHOLD {
            Some(zstd::bulk::compress(data, ZSTD_LEVEL).at("compress", &self.tmp_dir)?)
        } else {
            zstd::bulk::compress(data, ZSTD_LEVEL)
                .at("compress", &self.tmp_dir)
                .map(|c| (c.len() < data.len()).then_some(c))?
        };
        match compressed {
            Some(c) => self.append(hash, c, Encoding::Zstd),
            None => self.append(hash, data.to_vec(), Encoding::Raw),
        }
    }

    /// Stores `bytes` as the stored form of `hash` whatever they decode to: forged blobs
    /// for hostile-input tests.
    #[cfg(test)]
    pub(crate) fn put_stored(
        &self,
        hash: ContentHash,
        bytes: &[u8],
        encoding: Encoding,
    ) -> Result<()> {
        assert!(self.claim(hash), "blob {hash} is already stored");
        self.append(hash, bytes.to_vec(), encoding)
    }

    /// Stores `data` unless already present; returns its hash.
    pub fn put_bytes(&self, data: &[u8]) -> Result<ContentHash> {
        let hash = ContentHash::of(data);
        if self.claim(hash) {
            if let Err(e) = self.write_new(hash, data) {
                self.unclaim(&hash);
                return Err(e);
            }
        }
        Ok(hash)
    }

    /// Reads the regular file at `path` once (never following a symlink), hashing it and,
    /// when its content is new, storing it. Small files are read into memory and compressed
    /// only if new; large ones are hashed in a streaming pass and, only if new, read again
    /// through zstd.
    /// Fails with [`CheckpointError::ChangedDuringSnapshot`] if the file's size or times
    /// change while it is read.
    pub fn put_file(&self, path: &Path) -> Result<PutFile> {
        self.put_file_with(path, None)
    }

    /// [`BlobWriter::put_file`], storing a new content from `prior`'s blobs when they hold
    /// it or one it differs from in a few bytes at the same path (see [`Prior`]).
    pub fn put_file_with(&self, path: &Path, prior: Option<Prior<'_>>) -> Result<PutFile> {
        let read = self.read_file_with(path, prior, &Holding::none())?;
        Ok(PutFile {
            hash: read.hash,
            metadata: read.metadata,
        })
    }

    /// [`BlobWriter::put_file_with`] that may leave a new content unstored: held in memory
    /// when `holding` has room for it, for the caller to store later with
    /// [`BlobWriter::put_held`] (a snapshot's contents, stored while the next phase runs).
    /// The file is read once, or twice when it is larger than [`STREAM_THRESHOLD`] and new,
    /// and must not change meanwhile.
    pub fn read_file_with(
        &self,
        path: &Path,
        prior: Option<Prior<'_>>,
        holding: &Holding,
    ) -> Result<ReadFile> {
        let (mut file, metadata) = open_regular(path)?;
        let size = metadata.len();
        let (hash, held) = if size <= STREAM_THRESHOLD {
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data).at("read", path)?;
            if data.len() as u64 != size {
                return Err(CheckpointError::ChangedDuringSnapshot {
                    path: path.to_owned(),
                });
            }
            let hash = ContentHash::of(&data);
            if self.contains(&hash) {
                (hash, None)
            } else if holding.take(size) {
                (hash, Some(data))
            } else {
                self.put_held(hash, &data, prior)?;
                (hash, None)
            }
        } else {
            // Hashed first: a large content that is already stored (an installed copy of a
            // library the build directory holds) is not compressed again for nothing. A new
            // one is read a second time, into memory or through zstd, and must hash the same.
            let mut hasher = blake3::Hasher::new();
            read_exactly(&mut file, path, size, &mut |c| {
                hasher.update(c);
                Ok(())
            })?;
            let hash = ContentHash::from(hasher.finalize());
            if self.contains(&hash) {
                (hash, None)
            } else if holding.take(size) {
                let mut data = vec![0u8; size as usize];
                file.read_exact_at(&mut data, 0).at("read", path)?;
                if ContentHash::of(&data) != hash {
                    return Err(CheckpointError::ChangedDuringSnapshot {
                        path: path.to_owned(),
                    });
                }
                (hash, Some(data))
            } else {
                let new = NewContent::File {
                    file: &file,
                    path,
                    size,
                };
                if !self.put_from_prior(prior, &hash, &new)? {
                    file.seek(io::SeekFrom::Start(0)).at("seek", path)?;
                    let stored =
                        self.put_streamed(|sink| read_exactly(&mut file, path, size, sink))?;
                    if stored != hash {
                        return Err(CheckpointError::ChangedDuringSnapshot {
                            path: path.to_owned(),
                        });
                    }
                }
                (hash, None)
            }
        };
        check_unchanged(&file, &metadata, path)?;
        Ok(ReadFile {
            hash,
            metadata,
            held,
        })
    }

    /// Stores `content`, which hashes to `hash` (held by [`BlobWriter::read_file_with`]),
    /// unless it is stored already; from `prior` as [`BlobWriter::put_file_with`] would.
    pub fn put_held(
        &self,
        hash: ContentHash,
        content: &[u8],
        prior: Option<Prior<'_>>,
    ) -> Result<()> {
        if self.contains(&hash)
            || self.put_from_prior(prior, &hash, &NewContent::Memory(content))?
        {
            return Ok(());
        }
        if content.len() as u64 > STREAM_THRESHOLD {
            // Through zstd's workers, as a large file is stored.
            let stored =
                self.put_streamed(|sink| content.chunks(CHUNK).try_for_each(&mut *sink))?;
            if stored != hash {
                return Err(CheckpointError::BlobCorrupt {
                    path: self.tmp_dir.clone(),
                    problem: format!("blob {hash}: the content held for it hashes to {stored}"),
                });
            }
        } else if self.claim(hash) {
            if let Err(e) = self.write_new(hash, content) {
                self.unclaim(&hash);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Stores the new content `hash` from `prior`'s contents ([`Prior`]). False, storing
    /// nothing, when none applies or what they store cannot be used (an earlier checkpoint's
    /// blobs are checked as they are read): the caller stores the content whole.
    fn put_from_prior(
        &self,
        prior: Option<Prior<'_>>,
        hash: &ContentHash,
        new: &NewContent<'_>,
    ) -> Result<bool> {
        let Some(prior) = prior else {
            return Ok(false);
        };
        let size = new.len();
        if let Some((store, at_path)) = prior.base {
            if store.contains(hash) && self.import(store, hash, Expect::Exactly(size)).is_ok() {
                return Ok(true);
            }
            if let Some((at, _)) = at_path.filter(|&(h, s)| s == size && h != *hash) {
                let regions = diff_with_stored(store, &at, new, hash)?;
                if regions.is_some()
                    && self
                        .put_patch_over(store, &at, size, *hash, regions)
                        .unwrap_or(false)
                {
                    return Ok(true);
                }
            }
        }
        self.put_delta(prior, new, hash)
    }

    /// Stores `new` (content `hash`) as a delta ([`super::delta`]) when it fits
    /// [`delta::may_store`] and the record pays ([`delta::pays`]). Its base is the whole
    /// blob that the content its path held is made from ([`BlobStore::whole_base`]: a delta
    /// stands on a whole blob only): in the earlier checkpoint when this one holds that blob
    /// already, else in this checkpoint's previous state, else in the earlier checkpoint,
    /// copied here (verified). False, storing nothing, otherwise, and when a blob it reads
    /// cannot be used: the caller stores the content whole.
    fn put_delta(
        &self,
        prior: Prior<'_>,
        new: &NewContent<'_>,
        hash: &ContentHash,
    ) -> Result<bool> {
        let size = new.len();
        if !delta::may_store(size, 0) {
            return Ok(false);
        }
        let whole = |store: &BlobStore, at: (ContentHash, u64)| store.whole_base(at).ok();
        let from_base = prior.base.and_then(|(store, at_path)| {
            let at = at_path.filter(|(h, _)| h != hash)?;
            Some((store, whole(store, at)?))
        });
        let from_here = prior
            .here
            .filter(|(h, _)| h != hash)
            .and_then(|at| Some((&self.store, whole(&self.store, at)?)));
        let (from, (base, base_size)) = match (from_base, from_here) {
            (Some((_, b)), _) if self.usable_base(Encoding::Delta, &b.0) => (&self.store, b),
            (_, Some(here)) => here,
            (Some(there), None) => there,
            (None, None) => return Ok(false),
        };
        if base == *hash || !delta::may_store(size, base_size) {
            return Ok(false);
        }
        // The base, the content, and a frame at most as long.
        let _memory = DeltaMemory::hold(base_size + 2 * size);
        let Ok(base_content) = from.read_base(&base, base_size) else {
            return Ok(false);
        };
        let read;
        let content = match new {
            NewContent::Memory(data) => *data,
            NewContent::File { file, path, size } => {
                let mut buf = vec![0u8; *size as usize];
                file.read_exact_at(&mut buf, 0).at("read", path)?;
                if ContentHash::of(&buf) != *hash {
                    return Err(CheckpointError::ChangedDuringSnapshot {
                        path: path.to_path_buf(),
                    });
                }
                read = buf;
                &read[..]
            }
        };
        let frame = delta::encode(&base_content, content).map_err(|problem| {
            CheckpointError::BlobCorrupt {
                path: self.tmp_dir.clone(),
                problem: format!("blob {hash}: cannot encode it as a delta: {problem}"),
            }
        })?;
        drop(base_content);
        if !delta::pays(delta::HEADER + frame.len(), size) {
            return Ok(false);
        }
        // Verified as it is copied: its content may have come from memory. An earlier
        // checkpoint whose stored base does not verify is not used.
        if !std::ptr::eq(from, &self.store)
            && self
                .import(from, &base, Expect::Exactly(base_size))
                .is_err()
        {
            return Ok(false);
        }
        if !self.usable_base(Encoding::Delta, &base) {
            return Ok(false);
        }
        if !self.claim(*hash) {
            return Ok(true);
        }
        let header = DeltaHeader {
            base,
            base_size,
            size,
        };
        let result = self.append(*hash, header.record(&frame), Encoding::Delta);
        if result.is_err() {
            self.unclaim(hash);
        }
        result.map(|()| true)
    }

    /// Stores content that `produce` passes, in chunks, to the sink it is given: streamed
    /// through zstd into a temporary file and hashed on the way, then appended to the pack
    /// unless already present. Nothing is stored when `produce` fails. Returns the hash.
    pub fn put_streamed(
        &self,
        produce: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
    ) -> Result<ContentHash> {
        let (hash, tmp) = self.compress_to_tmp(produce)?;
        if self.claim(hash) {
            if let Err(e) = self.adopt_file(hash, &tmp, Encoding::Zstd) {
                self.unclaim(&hash);
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        } else {
            fs::remove_file(&tmp).at("remove", &tmp)?;
        }
        Ok(hash)
    }

    /// [`BlobWriter::put_streamed`] for a content the caller has claimed as `hash`: it must
    /// hash to that.
    fn store_streamed_as(
        &self,
        hash: ContentHash,
        produce: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
    ) -> Result<()> {
        let (found, tmp) = self.compress_to_tmp(produce)?;
        let result = if found == hash {
            self.adopt_file(hash, &tmp, Encoding::Zstd)
        } else {
            Err(CheckpointError::BlobCorrupt {
                path: tmp.clone(),
                problem: format!("blob {hash}: its content hashes to {found}"),
            })
        };
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Compresses what `produce` passes into a temporary file, hashing it on the way.
    fn compress_to_tmp(
        &self,
        produce: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
    ) -> Result<(ContentHash, PathBuf)> {
        let tmp = self.tmp_path();
        let result = (|| {
            let out = File::create(&tmp).at("create", &tmp)?;
            let masked = MaskingWriter {
                inner: out,
                buf: Vec::new(),
            };
            let mut enc = zstd::stream::write::Encoder::new(masked, STREAM_ZSTD_LEVEL)
                .at("compress", &tmp)?;
            enc.multithread(self.zstd_workers).at("compress", &tmp)?;
            let mut hasher = blake3::Hasher::new();
            produce(&mut |chunk: &[u8]| {
                hasher.update(chunk);
                enc.write_all(chunk).at("write", &tmp)
            })?;
            let mut w = enc.finish().at("compress", &tmp)?;
            w.flush().at("write", &tmp)?;
            Ok(ContentHash::from(hasher.finalize()))
        })();
        match result {
            Ok(h) => Ok((h, tmp)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Copies blob `hash` from another store byte for byte (no recompression), after
    /// verifying it against `expect`. Does nothing if it is already present.
    pub fn import(&self, from: &BlobStore, hash: &ContentHash, expect: Expect) -> Result<()> {
        self.import_inner(from, hash, Some(expect))
    }

    /// Like [`BlobWriter::import`] for a blob the caller has just read in full through
    /// [`BlobStore::stream`] (which verified it): copies without rehashing.
    pub(crate) fn import_verified(&self, from: &BlobStore, hash: &ContentHash) -> Result<()> {
        self.import_inner(from, hash, None)
    }

    /// Stores content `hash` as `patch` over its base: the caller has hashed the patched
    /// content. True when stored (or already present); false, storing nothing, when this
    /// checkpoint does not hold the base as a blob a patch may stand on (not stored, still
    /// being stored by another thread, or patched itself): the caller stores the content
    /// whole instead.
    pub fn put_patched(&self, hash: ContentHash, patch: &Patch) -> Result<bool> {
        if !self.usable_base(Encoding::Patch, &patch.base) {
            return Ok(false);
        }
        if !self.claim(hash) {
            return Ok(true);
        }
        let result = self.append(hash, patch.to_bytes(), Encoding::Patch);
        if result.is_err() {
            self.unclaim(&hash);
        }
        result.map(|()| true)
    }

    /// Stores `new`, a content of `size` bytes that differs from blob `hash` of `from` (just
    /// read, so verified) where `regions` say, as a patch over the blob `hash` stands on
    /// there (itself, or its base when it is a patch: the regions are laid over that
    /// patch's). False, storing nothing, when there are no regions, the record would not
    /// pay, or this checkpoint cannot take the base; the caller then stores the content
    /// whole.
    pub fn put_patch_over(
        &self,
        from: &BlobStore,
        hash: &ContentHash,
        size: u64,
        new: ContentHash,
        regions: Option<Vec<Region>>,
    ) -> Result<bool> {
        let Some(regions) = regions else {
            return Ok(false);
        };
        if self.contains(&new) {
            return Ok(true);
        }
        let (base, regions) = match from.patch_of(hash)? {
            Some(p) => (p.base, overlay(&p.regions, &regions)),
            None => (*hash, regions),
        };
        if record_len(&regions) > patch_budget(size).min(MAX_PATCH_RECORD as usize) {
            return Ok(false);
        }
        self.import_verified(from, &base)?;
        self.put_patched(
            new,
            &Patch {
                base,
                size,
                regions,
            },
        )
    }

    /// True if `base` is stored here, readable, in an encoding a blob of encoding `own` may
    /// stand on ([`Encoding::may_stand_on`]).
    fn usable_base(&self, own: Encoding, base: &ContentHash) -> bool {
        self.store
            .location(base)
            .is_some_and(|(_, b)| own.may_stand_on(b.encoding))
    }

    fn import_inner(
        &self,
        from: &BlobStore,
        hash: &ContentHash,
        verify: Option<Expect>,
    ) -> Result<()> {
        if !self.claim(*hash) {
            return Ok(());
        }
        let result = (|| {
            if let Some(expect) = verify {
                from.verify(hash, expect)?;
            }
            // A patched or delta blob comes with its base. Where that base is not usable
            // here (another thread is still storing it, or this checkpoint holds that content
            // as a patch or delta of its own), the content is stored whole.
            if let Some(m) = from.made_from(hash)? {
                // Verified on its own: the read that verified `hash` may have taken the
                // base's content from memory ([`DecodedBases`]), not from these stored bytes.
                self.import_inner(from, &m.base, Some(Expect::Exactly(m.base_size)))?;
                if !self.usable_base(m.encoding, &m.base) {
                    return self.store_streamed_as(*hash, |sink| {
                        from.stream(hash, Expect::Exactly(m.size), |c| sink(c))
                            .map(|_| ())
                    });
                }
            }
            self.copy_stored(from, hash)
        })();
        if result.is_err() {
            self.unclaim(hash);
        }
        result
    }
}

/// Opens the regular file at `path` for reading without following a symlink (nor blocking
/// on a fifo swapped in); returns it with its metadata.
fn open_regular(path: &Path) -> Result<(File, fs::Metadata)> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .at("open", path)?;
    let metadata = file.metadata().at("stat", path)?;
    if !metadata.file_type().is_file() {
        return Err(CheckpointError::ChangedDuringSnapshot {
            path: path.to_owned(),
        });
    }
    Ok((file, metadata))
}

/// Passes exactly `size` bytes of `file` to `sink` in chunks; a different length means the
/// file changed while it was read.
fn read_exactly(
    file: &mut File,
    path: &Path,
    size: u64,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    if read_in_chunks(file, path, sink)? != size {
        return Err(CheckpointError::ChangedDuringSnapshot {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Fails if the size or times of an open file differ from `before`.
fn check_unchanged(file: &File, before: &fs::Metadata, path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let after = file.metadata().at("stat", path)?;
    if after.len() != before.len()
        || after.mtime() != before.mtime()
        || after.mtime_nsec() != before.mtime_nsec()
        || after.ctime() != before.ctime()
        || after.ctime_nsec() != before.ctime_nsec()
    {
        return Err(CheckpointError::ChangedDuringSnapshot {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Reads the regular file at `path` once, never following a symlink, and hashes it: what
/// [`BlobWriter::put_file`] learns, without storing anything. Fails with
/// [`CheckpointError::ChangedDuringSnapshot`] if the file changes while it is read.
pub fn hash_file(path: &Path) -> Result<PutFile> {
    let (mut file, metadata) = open_regular(path)?;
    let mut hasher = blake3::Hasher::new();
    read_exactly(&mut file, path, metadata.len(), &mut |c| {
        hasher.update(c);
        Ok(())
    })?;
    check_unchanged(&file, &metadata, path)?;
    Ok(PutFile {
        hash: ContentHash::from(hasher.finalize()),
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::testutil::TempDir;

    #[test]
    fn store_once_and_read_back() {
        let t = TempDir::new("blobs");
        let w = BlobWriter::open(t.path(), &t.path().join("tmp")).unwrap();
        let small = b"tiny".to_vec();
        let text = b"hello world ".repeat(1000);
        let random: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let hs: Vec<_> = [&small, &text, &random]
            .iter()
            .map(|d| w.put_bytes(d).unwrap())
            .collect();
        w.put_bytes(&text).unwrap();
        let s = w.store();
        // Readable before the pack is sealed.
        assert_eq!(s.read(&hs[1]).unwrap(), text);
        let (table, len) = w.seal(0).unwrap();
        assert_eq!(table.len(), 3, "stored once");
        assert_eq!(check_pack_table(&table), Ok(len));
        assert_eq!(
            fs::metadata(t.path().join("packs/000.pack")).unwrap().len(),
            len
        );
        assert_eq!(s.location(&hs[0]).unwrap().1.encoding, Encoding::Raw);
        assert_eq!(s.location(&hs[1]).unwrap().1.encoding, Encoding::Zstd);
        assert_eq!(s.read(&hs[1]).unwrap(), text);
        assert_eq!(s.read(&hs[2]).unwrap(), random);
        assert_eq!(s.hashes().len(), 3);

        // Large file: streamed path, into the next layer's pack.
        let big: Vec<u8> = (0..(STREAM_THRESHOLD as usize + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        let f = t.path().join("big");
        fs::write(&f, &big).unwrap();
        let put = w.put_file(&f).unwrap();
        assert_eq!(put.hash, ContentHash::of(&big));
        assert_eq!(s.read(&put.hash).unwrap(), big);
        assert_eq!(w.seal(1).unwrap().0.len(), 1);
        assert_eq!(s.location(&put.hash).unwrap().0, 1);
        assert_eq!(w.seal(2).unwrap(), (vec![], 0), "nothing new: no pack");
        assert!(!t.path().join("packs/002.pack").exists());
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);

        // Blobs appended out of hash order, one larger than the copy buffer and
        // incompressible: the sealed pack is rewritten in hash order and reads back.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..(CHUNK + CHUNK / 2))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let big_hash = ContentHash::of(&noise);
        let small = (0u32..)
            .map(|i| format!("small blob {i}").into_bytes())
            .find(|d| ContentHash::of(d) < big_hash)
            .unwrap();
        assert_eq!(w.put_bytes(&noise).unwrap(), big_hash);
        let small_hash = w.put_bytes(&small).unwrap();
        let (sorted, len) = w.seal(3).unwrap();
        assert_eq!(
            sorted.iter().map(|b| b.blake3).collect::<Vec<_>>(),
            vec![small_hash, big_hash]
        );
        assert_eq!(
            fs::metadata(t.path().join("packs/003.pack")).unwrap().len(),
            len
        );
        assert_eq!(s.read(&big_hash).unwrap(), noise);
        assert_eq!(s.read(&small_hash).unwrap(), small);
        let reopened = BlobStore::open(t.path(), [(3, &sorted[..])]).unwrap();
        assert_eq!(reopened.read(&big_hash).unwrap(), noise);
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);

        // A store opened from the tables reads the same.
        let tables = [(0, table)];
        let r = BlobStore::open(t.path(), tables.iter().map(|(i, t)| (*i, &t[..]))).unwrap();
        assert_eq!(r.read(&hs[2]).unwrap(), random);
    }

    /// Blobs imported from another checkpoint are read from its pack until the seal, which
    /// copies them once into place: the sealed pack is byte for byte the one a writer that
    /// stored the same contents itself seals. A borrowed pack cut short before the seal is
    /// a corrupt blob, never a short pack.
    #[test]
    fn imported_blobs_are_copied_once_at_the_seal() {
        let t = TempDir::new("blobs-borrowed");
        let contents: Vec<Vec<u8>> = (0..20u32)
            .map(|i| format!("content {i} ").repeat(50 + i as usize).into_bytes())
            .collect();
        let a = BlobWriter::open(&t.path().join("a"), &t.path().join("a/tmp")).unwrap();
        let hashes: Vec<ContentHash> = contents.iter().map(|c| a.put_bytes(c).unwrap()).collect();
        let (table, _) = a.seal(0).unwrap();
        let from = BlobStore::open(&t.path().join("a"), [(0, &table[..])]).unwrap();

        let b = BlobWriter::open(&t.path().join("b"), &t.path().join("b/tmp")).unwrap();
        let direct = BlobWriter::open(&t.path().join("c"), &t.path().join("c/tmp")).unwrap();
        for (i, (h, c)) in hashes.iter().zip(&contents).enumerate() {
            if i % 3 == 0 {
                assert_eq!(b.put_bytes(c).unwrap(), *h);
            } else {
                b.import(&from, h, Expect::Exactly(c.len() as u64)).unwrap();
            }
            direct.put_bytes(c).unwrap();
        }
        assert_eq!(
            b.store().read(&hashes[1]).unwrap(),
            contents[1],
            "readable before"
        );
        let (sealed, len) = b.seal(0).unwrap();
        assert_eq!((sealed.clone(), len), direct.seal(0).unwrap());
        assert!(
            fs::read(t.path().join("b/packs/000.pack")).unwrap()
                == fs::read(t.path().join("c/packs/000.pack")).unwrap()
        );
        let reopened = BlobStore::open(&t.path().join("b"), [(0, &sealed[..])]).unwrap();
        for (h, c) in hashes.iter().zip(&contents) {
            assert_eq!(reopened.read(h).unwrap(), *c);
        }

        let d = BlobWriter::open(&t.path().join("d"), &t.path().join("d/tmp")).unwrap();
        for (h, c) in hashes.iter().zip(&contents) {
            d.import(&from, h, Expect::Exactly(c.len() as u64)).unwrap();
        }
        let pack = fs::OpenOptions::new()
            .write(true)
            .open(t.path().join("a/packs/000.pack"))
            .unwrap();
        pack.set_len(len / 2).unwrap();
        assert!(matches!(
            d.seal(0),
            Err(CheckpointError::BlobCorrupt { .. })
        ));
        assert!(!t.path().join("d/packs/000.pack").exists());
    }

    /// A patched blob imported into a checkpoint that holds its base as a patch of its own (a
    /// base a patch may not stand on) is stored whole, and reads back the same.
    #[test]
    fn a_patch_whose_base_is_patched_here_is_imported_whole() {
        let t = TempDir::new("blobs-patched-base");
        let c: Vec<u8> = (0..8192u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let edited = |from: &[u8], at: usize, text: &[u8]| {
            let mut v = from.to_vec();
            v[at..at + text.len()].copy_from_slice(text);
            v
        };
        let b = edited(&c, 100, b"base");
        let p = edited(&b, 5000, b"patched");
        let patch_of = |base: &[u8], new: &[u8]| {
            let mut diff = DiffRegions::for_content(new.len() as u64).unwrap();
            diff.feed(base, new);
            Patch {
                base: ContentHash::of(base),
                size: new.len() as u64,
                regions: diff.finish().unwrap(),
            }
        };
        // The earlier checkpoint: `b` whole, `p` a patch over it.
        let f = BlobWriter::open(&t.path().join("f"), &t.path().join("f/tmp")).unwrap();
        f.put_bytes(&b).unwrap();
        assert!(f
            .put_patched(ContentHash::of(&p), &patch_of(&b, &p))
            .unwrap());
        let (table, _) = f.seal(0).unwrap();
        let from = BlobStore::open(&t.path().join("f"), [(0, &table[..])]).unwrap();
        assert!(from.patch_of(&ContentHash::of(&p)).unwrap().is_some());

        // This checkpoint holds `b` as a patch over `c`.
        let w = BlobWriter::open(&t.path().join("w"), &t.path().join("w/tmp")).unwrap();
        w.put_bytes(&c).unwrap();
        assert!(w
            .put_patched(ContentHash::of(&b), &patch_of(&c, &b))
            .unwrap());
        w.import(&from, &ContentHash::of(&p), Expect::Exactly(p.len() as u64))
            .unwrap();
        let (sealed, _) = w.seal(0).unwrap();
        let stored = BlobStore::open(&t.path().join("w"), [(0, &sealed[..])]).unwrap();
        let encoding = |h: &ContentHash| stored.location(h).unwrap().1.encoding;
        assert_eq!(encoding(&ContentHash::of(&b)), Encoding::Patch);
        assert_eq!(encoding(&ContentHash::of(&p)), Encoding::Zstd);
        for content in [&c, &b, &p] {
            assert!(stored.read(&ContentHash::of(content)).unwrap() == *content);
        }
    }

    /// A streamed content is compressed into a temporary file and read from there until the
    /// seal, which copies it into the pack once and removes it; the pack holds every blob's
    /// stored bytes in hash order, as if they had been appended.
    #[test]
    fn streamed_contents_stay_in_their_temporary_file_until_the_seal() {
        let t = TempDir::new("blobs-streamed");
        let (dir, tmp) = (t.path().join("a"), t.path().join("a/tmp"));
        let w = BlobWriter::open(&dir, &tmp).unwrap();
        let temporaries = || {
            fs::read_dir(&tmp)
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    !name.to_string_lossy().starts_with("pack-")
                })
                .count()
        };
        let small: Vec<Vec<u8>> = (0..6u32)
            .map(|i| format!("small {i} ").repeat(40).into_bytes())
            .collect();
        let large: Vec<Vec<u8>> = (0..2u32)
            .map(|i| format!("streamed {i} ").repeat(20_000).into_bytes())
            .collect();
        let mut hashes = Vec::new();
        for (s, l) in small.iter().zip(large.iter().cycle()) {
            hashes.push(w.put_bytes(s).unwrap());
            // The second time a streamed content comes, nothing more is kept.
            let h = w
                .put_streamed(|sink| l.chunks(1000).try_for_each(&mut *sink))
                .unwrap();
            assert_eq!(h, ContentHash::of(l));
            hashes.push(h);
        }
        hashes.sort();
        hashes.dedup();
        assert_eq!(temporaries(), 2, "one temporary file per streamed content");
        assert_eq!(
            w.store().read(&ContentHash::of(&large[1])).unwrap(),
            large[1]
        );
        let stored: Vec<Vec<u8>> = hashes
            .iter()
            .map(|h| w.store().stored_bytes(h).unwrap().0)
            .collect();

        let (table, len) = w.seal(0).unwrap();
        assert_eq!(temporaries(), 0, "the seal removes them");
        assert_eq!(
            table.iter().map(|b| b.blake3).collect::<Vec<_>>(),
            hashes,
            "hash order"
        );
        let mut pack = fs::read(dir.join("packs/000.pack")).unwrap();
        assert_eq!(pack.len() as u64, len);
        mask(&mut pack);
        assert!(
            pack == stored.concat(),
            "the pack holds the stored bytes, masked"
        );
        let reopened = BlobStore::open(&dir, [(0, &table[..])]).unwrap();
        for c in small.iter().chain(&large) {
            assert_eq!(reopened.read(&ContentHash::of(c)).unwrap(), *c);
        }
        assert_eq!(
            w.store().read(&ContentHash::of(&large[0])).unwrap(),
            large[0]
        );
    }

    /// zstd's worker threads must not make packs depend on the machine's core count: streamed
    /// content long enough for several of zstd's jobs is stored byte for byte the same with
    /// one worker or several, in frames that keep the window the format promises (2^22).
    #[test]
    fn streamed_content_is_stored_the_same_with_any_number_of_zstd_workers() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let words = [
            &b"alpha "[..],
            b"beta ",
            b"gamma\n",
            b"\x7fELF\0\0",
            b"delta ",
        ];
        let mut content = Vec::with_capacity(24 << 20);
        while content.len() < 24 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            content.extend_from_slice(words[(x % 5) as usize]);
            content.push(x as u8);
        }
        let t = TempDir::new("blobs-workers");
        let stored: Vec<Vec<u8>> = [1, 2, 3]
            .iter()
            .map(|&workers| {
                let dir = t.path().join(format!("w{workers}"));
                let mut w = BlobWriter::open(&dir, &dir.join("tmp")).unwrap();
                w.set_zstd_workers(workers);
                let hash = w
                    .put_streamed(|sink| content.chunks(CHUNK / 3).try_for_each(&mut *sink))
                    .unwrap();
                assert_eq!(hash, ContentHash::of(&content));
                let (bytes, encoding) = w.store().stored_bytes(&hash).unwrap();
                assert_eq!(encoding, Encoding::Zstd);
                bytes
            })
            .collect();
        assert!(stored[0].len() < content.len() / 2, "compressed");
        assert!(stored.iter().all(|s| *s == stored[0]));
        let mut decoder = zstd::stream::read::Decoder::new(&stored[0][..]).unwrap();
        decoder.window_log_max(22).unwrap();
        let mut back = Vec::new();
        decoder.read_to_end(&mut back).unwrap();
        assert!(back == content);
    }

    #[test]
    fn an_empty_blob_published_after_a_blob_at_its_offset_is_no_hole() {
        // Two threads' appends interleaved: the empty content reserves its zero bytes at the
        // pack's end, another blob then reserves the same offset, is written and published,
        // and the empty blob is published last.
        let t = TempDir::new("blobs");
        let w = BlobWriter::open(t.path(), &t.path().join("tmp")).unwrap();
        let first = w.put_bytes(b"first").unwrap();
        let empty = ContentHash::of(b"");
        assert!(w.claim(empty));
        let (_, layer, at) = w.reserve(0).unwrap();
        let data = b"reserved after the empty blob, published before it";
        let hash = ContentHash::of(data);
        assert!(w.claim(hash));
        let (file, _, offset) = w.reserve(data.len() as u64).unwrap();
        assert_eq!(offset, at, "the same offset");
        let mut masked = data.to_vec();
        mask(&mut masked);
        file.write_all_at(&masked, offset).unwrap();
        let blob = |blake3, offset, length| PackedBlob {
            blake3,
            offset,
            length,
            encoding: Encoding::Raw,
        };
        w.publish(layer, blob(hash, offset, data.len() as u64));
        w.publish(layer, blob(empty, at, 0));
        let (table, len) = w.seal(layer).unwrap();
        assert_eq!(table.len(), 3);
        assert_eq!(check_pack_table(&table), Ok(len));
        let s = w.store();
        assert_eq!(s.read(&empty).unwrap(), b"");
        assert_eq!(s.read(&hash).unwrap(), data);
        assert_eq!(s.read(&first).unwrap(), b"first");
        let reopened = BlobStore::open(t.path(), [(layer, &table[..])]).unwrap();
        assert_eq!(reopened.read(&hash).unwrap(), data);
    }

    #[test]
    fn corruption_is_detected() {
        let t = TempDir::new("blobs");
        let w = BlobWriter::open(t.path(), &t.path().join("tmp")).unwrap();
        let text = b"some compressible text ".repeat(100);
        let h = w.put_bytes(&text).unwrap();
        let (table, _) = w.seal(0).unwrap();
        let p = t.path().join("packs/000.pack");
        let mut bytes = fs::read(&p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        fs::write(&p, bytes).unwrap();
        let open = || BlobStore::open(t.path(), [(0, &table[..])]).unwrap();
        assert!(matches!(
            open().verify(&h, Expect::Exactly(text.len() as u64)),
            Err(CheckpointError::BlobCorrupt { .. })
        ));
        let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(3).unwrap();
        assert!(matches!(
            open().verify(&h, Expect::Exactly(text.len() as u64)),
            Err(CheckpointError::BlobCorrupt { .. })
        ));
        fs::remove_file(&p).unwrap();
        assert!(matches!(
            open().verify(&h, Expect::Exactly(text.len() as u64)),
            Err(CheckpointError::BlobMissing { .. })
        ));
        assert!(matches!(
            open().verify(&ContentHash::of(b"other"), Expect::AtMost(5)),
            Err(CheckpointError::BlobMissing { .. })
        ));
    }
}
