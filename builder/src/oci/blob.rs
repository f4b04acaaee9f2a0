//! Content-addressed blobs of an OCI layout (`blobs/sha256/<hex>`), written as a stream:
//! bytes go through a sha256 hashing writer (the uncompressed digest, a layer's `diff_id`),
//! the compressor, a second hashing writer (the blob's digest) and into a temporary file in
//! `blobs/sha256/`, renamed to its digest when complete. Nothing is held whole in memory.

use super::error::OciError;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// How layer tars are compressed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Compression {
    /// gzip, level 6, header without name or mtime, OS byte 255 ("unknown").
    #[default]
    Gzip,
    /// zstd, level 3, one frame, no checksum (the digest covers it).
    Zstd,
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// Parses `--compression`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// A written blob: `sha256:<hex>` and its size in bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Digest {
    pub digest: String,
    pub size: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Counts and hashes what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer and the digest of everything written.
    pub fn finish(self) -> (W, Digest) {
        let digest = Digest {
            digest: format!("sha256:{}", hex(&self.hasher.finalize())),
            size: self.count,
        };
        (self.inner, digest)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type FileSink = HashingWriter<BufWriter<File>>;

enum Encoder {
    Gzip(flate2::write::GzEncoder<FileSink>),
    Zstd(zstd::stream::write::Encoder<'static, FileSink>),
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// The `blobs/sha256` directory of a layout being written.
pub struct BlobDir {
    dir: PathBuf,
    next_tmp: u32,
}

impl BlobDir {
    /// Creates `layout/blobs/sha256`.
    pub fn create(layout: &Path) -> Result<Self, OciError> {
        let dir = layout.join("blobs").join("sha256");
        std::fs::create_dir_all(&dir).map_err(OciError::io("cannot create", &dir))?;
        Ok(BlobDir { dir, next_tmp: 0 })
    }

    fn tmp_path(&mut self) -> PathBuf {
        self.next_tmp += 1;
        self.dir.join(format!(".tmp-{}", self.next_tmp))
    }

    /// Moves a complete temporary file to its digest's name (an equal blob already there
    /// is the same bytes: the temporary file is dropped).
    fn commit(&self, tmp: &Path, d: &Digest) -> Result<(), OciError> {
        let dest = self.dir.join(d.digest.trim_start_matches("sha256:"));
        if dest.exists() {
            std::fs::remove_file(tmp).map_err(OciError::io("cannot remove", tmp))?;
            return Ok(());
        }
        std::fs::rename(tmp, &dest).map_err(OciError::io("cannot rename into place", &dest))
    }

    /// Writes a small blob (JSON) given whole.
    pub fn put_bytes(&mut self, bytes: &[u8]) -> Result<Digest, OciError> {
        let tmp = self.tmp_path();
        std::fs::write(&tmp, bytes).map_err(OciError::io("cannot write", &tmp))?;
        let mut h = HashingWriter::new(io::sink());
        h.write_all(bytes).expect("a sink never fails");
        let (_, d) = h.finish();
        self.commit(&tmp, &d)?;
        Ok(d)
    }

    /// Writes a layer: `fill` writes the uncompressed tar; returns the digest of the tar
    /// (`diff_id`) and of the compressed blob. On error the temporary file is removed.
    pub fn put_layer<E>(
        &mut self,
        compression: Compression,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<Result<(Digest, Digest), E>, OciError> {
        let tmp = self.tmp_path();
        let result = self.write_layer(&tmp, compression, fill);
        match result {
            Ok(Ok((diff_id, blob))) => {
                self.commit(&tmp, &blob)?;
                Ok(Ok((diff_id, blob)))
            }
            other => {
                let _ = std::fs::remove_file(&tmp);
                other
            }
        }
    }

    fn write_layer<E>(
        &self,
        tmp: &Path,
        compression: Compression,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<Result<(Digest, Digest), E>, OciError> {
        let io_err = OciError::io;
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(io_err("cannot create", tmp))?;
        let sink = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        let encoder = match compression {
            Compression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(sink, flate2::Compression::new(6)),
            ),
            Compression::Zstd => Encoder::Zstd(
                zstd::stream::write::Encoder::new(sink, 3).map_err(io_err("zstd", tmp))?,
            ),
        };
        let mut tar = HashingWriter::new(io::BufWriter::with_capacity(1 << 16, encoder));
        if let Err(e) = fill(&mut tar) {
            return Ok(Err(e));
        }
        let (buffered, diff_id) = tar.finish();
        let encoder = buffered.into_inner().map_err(|e| OciError::Io {
            what: "cannot write",
            path: tmp.to_owned(),
            source: e.into_error(),
        })?;
        let sink = match encoder {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
        .map_err(io_err("cannot compress into", tmp))?;
        let (file, blob) = sink.finish();
        file.into_inner().map_err(|e| OciError::Io {
            what: "cannot write",
            path: tmp.to_owned(),
            source: e.into_error(),
        })?;
        Ok(Ok((diff_id, blob)))
    }
}
