//! The content-addressed blob store of a checkpoint (`blobs/ab/<blake3>.zst|.raw`): writing
//! each distinct content once, reading it back with its hash verified. Knows nothing of
//! manifests or trees.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::error::{CheckpointError, IoResultExt, Result};
use super::manifest::ContentHash;

/// Files up to this size are read into memory once (hash, then compress only when the
/// blob is new); larger files are hashed and compressed in one streaming pass.
pub const STREAM_THRESHOLD: u64 = 4 << 20;
/// zstd level used for blobs.
pub const ZSTD_LEVEL: i32 = 3;
/// Blobs shorter than this are stored raw.
pub const RAW_BELOW: usize = 64;
const CHUNK: usize = 1 << 20;

/// How a blob file encodes its content, told by its suffix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Encoding {
    /// `.zst`: one or more zstd frames.
    Zstd,
    /// `.raw`: the content itself.
    Raw,
}

impl Encoding {
    fn suffix(self) -> &'static str {
        match self {
            Encoding::Zstd => "zst",
            Encoding::Raw => "raw",
        }
    }
}

/// Relative location of a blob inside the blob directory.
pub fn blob_rel_path(hash: &ContentHash, enc: Encoding) -> PathBuf {
    let hex = hash.to_hex();
    PathBuf::from(&hex[..2]).join(format!("{hex}.{}", enc.suffix()))
}

/// Read access to a blob directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// A store rooted at `dir` (the checkpoint's `blobs/`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BlobStore { dir: dir.into() }
    }

    /// The blob directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Finds the file holding `hash`.
    pub fn locate(&self, hash: &ContentHash) -> Result<(PathBuf, Encoding)> {
        for enc in [Encoding::Zstd, Encoding::Raw] {
            let p = self.dir.join(blob_rel_path(hash, enc));
            match fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_file() => return Ok((p, enc)),
                Ok(_) => {
                    return Err(CheckpointError::UnexpectedFile {
                        path: p,
                        problem: "a blob must be a regular file",
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(CheckpointError::io("stat", p, e)),
            }
        }
        Err(CheckpointError::BlobMissing {
            hash: hash.to_hex(),
            dir: self.dir.clone(),
        })
    }

    /// True if the blob file exists (content not checked).
    pub fn contains(&self, hash: &ContentHash) -> bool {
        self.locate(hash).is_ok()
    }

    /// Streams the content of `hash` into `sink` in chunks, then checks that it hashes to
    /// `hash`. Returns the content length. The sink sees unverified data: callers write
    /// only into places they discard on error.
    pub fn stream(
        &self,
        hash: &ContentHash,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let (path, enc) = self.locate(hash)?;
        let file = File::open(&path).at("open blob", &path)?;
        let corrupt = |problem: String| CheckpointError::BlobCorrupt {
            path: path.clone(),
            problem,
        };
        let mut reader: Box<dyn Read> = match enc {
            Encoding::Raw => Box::new(file),
            Encoding::Zstd => Box::new(
                zstd::stream::read::Decoder::new(file)
                    .map_err(|e| corrupt(format!("zstd: {e}")))?,
            ),
        };
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if enc == Encoding::Zstd => return Err(corrupt(format!("zstd: {e}"))),
                Err(e) => return Err(CheckpointError::io("read blob", &path, e)),
            };
            hasher.update(&buf[..n]);
            total += n as u64;
            sink(&buf[..n])?;
        }
        let found = ContentHash::from(hasher.finalize());
        if found != *hash {
            return Err(corrupt(format!("content hashes to {found}")));
        }
        Ok(total)
    }

    /// Reads and verifies a whole blob into memory.
    pub fn read(&self, hash: &ContentHash) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.stream(hash, |c| {
            out.extend_from_slice(c);
            Ok(())
        })?;
        Ok(out)
    }

    /// Verifies one blob; returns its content length.
    pub fn verify(&self, hash: &ContentHash) -> Result<u64> {
        self.stream(hash, |_| Ok(()))
    }

    /// Lists every blob file, checking the layout (two-hex-digit fan-out directories,
    /// `<hash>.zst` or `<hash>.raw` regular files, no duplicates).
    pub fn list(&self) -> Result<Vec<(ContentHash, PathBuf)>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(CheckpointError::io("read dir", &self.dir, e)),
        };
        for fan in rd {
            let fan = fan.at("read dir", &self.dir)?;
            let fan_path = fan.path();
            let fan_name = fan.file_name();
            let fan_name = fan_name.to_string_lossy();
            let ft = fan.file_type().at("stat", &fan_path)?;
            if !ft.is_dir()
                || fan_name.len() != 2
                || !fan_name
                    .bytes()
                    .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(CheckpointError::UnexpectedFile {
                    path: fan_path,
                    problem: "blobs/ holds only two-hex-digit directories",
                });
            }
            for f in fs::read_dir(&fan_path).at("read dir", &fan_path)? {
                let f = f.at("read dir", &fan_path)?;
                let p = f.path();
                let name = f.file_name();
                let name = name.to_string_lossy();
                let hash = name
                    .strip_suffix(".zst")
                    .or_else(|| name.strip_suffix(".raw"))
                    .and_then(ContentHash::from_hex);
                let ok_file = f.file_type().at("stat", &p)?.is_file();
                match hash {
                    Some(h) if ok_file && h.to_hex().starts_with(&*fan_name) => {
                        if !seen.insert(h) {
                            return Err(CheckpointError::UnexpectedFile {
                                path: p,
                                problem: "blob stored twice (.zst and .raw)",
                            });
                        }
                        out.push((h, p));
                    }
                    _ => {
                        return Err(CheckpointError::UnexpectedFile {
                            path: p,
                            problem: "not a blob file named <blake3>.zst or <blake3>.raw",
                        })
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Counters of what a writer added.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct BlobStats {
    /// Blob files written.
    pub blobs: u64,
    /// Bytes on disk of those files.
    pub bytes: u64,
}

/// Write access to a blob directory; safe to share between threads.
#[derive(Debug)]
pub struct BlobWriter {
    store: BlobStore,
    tmp_dir: PathBuf,
    known: Mutex<HashSet<ContentHash>>,
    counter: AtomicU64,
    added: AtomicU64,
    added_bytes: AtomicU64,
}

/// What [`BlobWriter::put_file`] learnt about the file it read.
#[derive(Debug)]
pub struct PutFile {
    /// blake3 of the content.
    pub hash: ContentHash,
    /// Metadata from the open descriptor, taken before reading.
    pub metadata: fs::Metadata,
}

impl BlobWriter {
    /// A writer for `blobs_dir` (created if missing) using `tmp_dir` for partial files.
    /// Blobs already present are indexed so they are never rewritten.
    pub fn open(blobs_dir: &Path, tmp_dir: &Path) -> Result<Self> {
        fs::create_dir_all(blobs_dir).at("create dir", blobs_dir)?;
        fs::create_dir_all(tmp_dir).at("create dir", tmp_dir)?;
        let store = BlobStore::new(blobs_dir);
        let known = store.list()?.into_iter().map(|(h, _)| h).collect();
        Ok(BlobWriter {
            store,
            tmp_dir: tmp_dir.to_owned(),
            known: Mutex::new(known),
            counter: AtomicU64::new(0),
            added: AtomicU64::new(0),
            added_bytes: AtomicU64::new(0),
        })
    }

    /// The read side of the same directory.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<ContentHash>> {
        // A poisoned lock only means another thread panicked; the set is still valid.
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True if `hash` is stored (or being stored by another thread).
    pub fn contains(&self, hash: &ContentHash) -> bool {
        self.known().contains(hash)
    }

    /// Returns and resets the counters.
    pub fn take_stats(&self) -> BlobStats {
        BlobStats {
            blobs: self.added.swap(0, Ordering::Relaxed),
            bytes: self.added_bytes.swap(0, Ordering::Relaxed),
        }
    }

    fn tmp_path(&self) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir.join(format!("{}-{n}", std::process::id()))
    }

    /// Claims `hash` for writing; false if it is already stored or claimed.
    fn claim(&self, hash: ContentHash) -> bool {
        self.known().insert(hash)
    }

    fn unclaim(&self, hash: &ContentHash) {
        self.known().remove(hash);
    }

    /// Moves a finished temporary file into place and counts it.
    fn commit(&self, tmp: &Path, hash: &ContentHash, enc: Encoding) -> Result<()> {
        let dest = self.store.dir.join(blob_rel_path(hash, enc));
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).at("create dir", parent)?;
        }
        let len = fs::metadata(tmp).at("stat", tmp)?.len();
        fs::rename(tmp, &dest).at("rename blob into", &dest)?;
        self.added.fetch_add(1, Ordering::Relaxed);
        self.added_bytes.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    fn write_new(&self, hash: ContentHash, data: &[u8]) -> Result<()> {
        let compressed = if data.len() < RAW_BELOW {
            None
        } else if data.len() as u64 > STREAM_THRESHOLD {
            Some(zstd::bulk::compress(data, ZSTD_LEVEL).at("compress", &self.store.dir)?)
        } else {
            zstd::bulk::compress(data, ZSTD_LEVEL)
                .at("compress", &self.store.dir)
                .map(|c| (c.len() < data.len()).then_some(c))?
        };
        let (bytes, enc) = match &compressed {
            Some(c) => (&c[..], Encoding::Zstd),
            None => (data, Encoding::Raw),
        };
        let tmp = self.tmp_path();
        fs::write(&tmp, bytes).at("write", &tmp)?;
        self.commit(&tmp, &hash, enc)
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
    /// only if new; large ones are hashed and compressed in the same streaming pass.
    /// Fails with [`CheckpointError::ChangedDuringSnapshot`] if the file's size or times
    /// change while it is read.
    pub fn put_file(&self, path: &Path) -> Result<PutFile> {
        let (mut file, metadata) = open_regular(path)?;
        let size = metadata.len();
        let hash = if size <= STREAM_THRESHOLD {
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data).at("read", path)?;
            if data.len() as u64 != size {
                return Err(CheckpointError::ChangedDuringSnapshot {
                    path: path.to_owned(),
                });
            }
            let hash = ContentHash::of(&data);
            if self.claim(hash) {
                if let Err(e) = self.write_new(hash, &data) {
                    self.unclaim(&hash);
                    return Err(e);
                }
            }
            hash
        } else {
            self.put_streamed(|sink| read_exactly(&mut file, path, size, sink))?
        };
        check_unchanged(&file, &metadata, path)?;
        Ok(PutFile { hash, metadata })
    }

    /// Stores content that `produce` passes, in chunks, to the sink it is given: streamed
    /// through zstd into a temporary file and hashed on the way, then committed unless
    /// already present. Nothing is stored when `produce` fails. Returns the content hash.
    pub fn put_streamed(
        &self,
        produce: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
    ) -> Result<ContentHash> {
        let tmp = self.tmp_path();
        let result = (|| {
            let out = File::create(&tmp).at("create", &tmp)?;
            let mut enc = zstd::stream::write::Encoder::new(io::BufWriter::new(out), ZSTD_LEVEL)
                .at("compress", &tmp)?;
            let mut hasher = blake3::Hasher::new();
            produce(&mut |chunk: &[u8]| {
                hasher.update(chunk);
                enc.write_all(chunk).at("write", &tmp)
            })?;
            let mut w = enc.finish().at("compress", &tmp)?;
            w.flush().at("write", &tmp)?;
            Ok(ContentHash::from(hasher.finalize()))
        })();
        let hash = match result {
            Ok(h) => h,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if self.claim(hash) {
            if let Err(e) = self.commit(&tmp, &hash, Encoding::Zstd) {
                self.unclaim(&hash);
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        } else {
            fs::remove_file(&tmp).at("remove", &tmp)?;
        }
        Ok(hash)
    }

    /// Copies blob `hash` from another store byte for byte (no recompression), after
    /// verifying it. Does nothing if it is already present.
    pub fn import(&self, from: &BlobStore, hash: &ContentHash) -> Result<()> {
        self.import_inner(from, hash, true)
    }

    /// Like [`BlobWriter::import`] for a blob the caller has just read in full through
    /// [`BlobStore::stream`] (which verified it): copies without rehashing.
    pub(crate) fn import_verified(&self, from: &BlobStore, hash: &ContentHash) -> Result<()> {
        self.import_inner(from, hash, false)
    }

    fn import_inner(&self, from: &BlobStore, hash: &ContentHash, verify: bool) -> Result<()> {
        if !self.claim(*hash) {
            return Ok(());
        }
        let result = (|| {
            if verify {
                from.verify(hash)?;
            }
            let (src, enc) = from.locate(hash)?;
            let tmp = self.tmp_path();
            fs::copy(&src, &tmp).at("copy blob", &src)?;
            self.commit(&tmp, hash, enc)
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
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CheckpointError::io("read", path, e)),
        };
        sink(&buf[..n])?;
        total += n as u64;
    }
    if total != size {
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
        let w = BlobWriter::open(&t.path().join("blobs"), &t.path().join("tmp")).unwrap();
        let small = b"tiny".to_vec();
        let text = b"hello world ".repeat(1000);
        let random: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let hs: Vec<_> = [&small, &text, &random]
            .iter()
            .map(|d| w.put_bytes(d).unwrap())
            .collect();
        assert_eq!(w.take_stats().blobs, 3);
        w.put_bytes(&text).unwrap();
        assert_eq!(w.take_stats().blobs, 0, "stored once");
        let s = w.store();
        assert_eq!(s.locate(&hs[0]).unwrap().1, Encoding::Raw);
        assert_eq!(s.locate(&hs[1]).unwrap().1, Encoding::Zstd);
        assert_eq!(s.read(&hs[1]).unwrap(), text);
        assert_eq!(s.read(&hs[2]).unwrap(), random);
        assert_eq!(s.list().unwrap().len(), 3);

        // Large file: streamed path.
        let big: Vec<u8> = (0..(STREAM_THRESHOLD as usize + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        let f = t.path().join("big");
        fs::write(&f, &big).unwrap();
        let put = w.put_file(&f).unwrap();
        assert_eq!(put.hash, ContentHash::of(&big));
        assert_eq!(s.read(&put.hash).unwrap(), big);
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn corruption_is_detected() {
        let t = TempDir::new("blobs");
        let w = BlobWriter::open(&t.path().join("blobs"), &t.path().join("tmp")).unwrap();
        let text = b"some compressible text ".repeat(100);
        let h = w.put_bytes(&text).unwrap();
        let (p, _) = w.store().locate(&h).unwrap();
        let mut bytes = fs::read(&p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        fs::write(&p, bytes).unwrap();
        assert!(matches!(
            w.store().verify(&h),
            Err(CheckpointError::BlobCorrupt { .. })
        ));
        fs::remove_file(&p).unwrap();
        assert!(matches!(
            w.store().verify(&h),
            Err(CheckpointError::BlobMissing { .. })
        ));
    }
}
