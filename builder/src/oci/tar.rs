//! Writes a planned layer as a POSIX tar stream (ustar headers with PAX extended records):
//! fixed owners (uid/gid 0, no user or group names), the recorded mode and mtime
//! (nanoseconds in a PAX `mtime` record), `user.*` xattrs as `SCHILY.xattr.*` records, file
//! contents streamed from the checkpoint's verified blobs. Nothing of the export itself
//! (time, user) reaches the stream, so equal plans give equal bytes.

use super::plan::{lossy, Item, Plan, SYNTHETIC_DIR_MODE};
use crate::checkpoint::blobs::BlobStore;
use crate::checkpoint::{CheckpointError, EntryKind, Expect, Timestamp, Xattrs};
use std::io::{self, Write};

const BLOCK: usize = 512;
/// The largest value an 11-digit octal ustar field holds.
const USTAR_MAX: u64 = 0o777_7777_7777;

/// Why writing a tar stream failed.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("writing the layer")]
    Write(#[source] io::Error),
    #[error("reading a file's content")]
    Blob(#[source] CheckpointError),
    #[error("{path:?}: content of {found} bytes, the entry says {expected}")]
    SizeMismatch {
        path: String,
        expected: u64,
        found: u64,
    },
    #[error("{path:?}: xattr name {name:?} contains `=`, which a PAX record cannot hold")]
    XattrName { path: String, name: String },
}

/// Writes every item of `plan` and the end-of-archive marker to `out`.
pub fn write_plan(
    plan: &Plan,
    blobs: &BlobStore,
    out: &mut (impl Write + ?Sized),
) -> Result<(), TarError> {
    for (path, item) in plan {
        write_item(path, item, blobs, out)?;
    }
    out.write_all(&[0u8; 2 * BLOCK]).map_err(TarError::Write)
}

fn write_item(
    path: &[u8],
    item: &Item,
    blobs: &BlobStore,
    out: &mut (impl Write + ?Sized),
) -> Result<(), TarError> {
    static NO_XATTRS: Xattrs = Xattrs::new();
    let mut name = path.to_vec();
    let mut header = tar::Header::new_ustar();
    let mut size = 0u64;
    let mut content = None;
    let mut linkname: Option<&[u8]> = None;
    // (entry type, mode, mtime, xattrs)
    let (ty, mode, mtime, xattrs) = match item {
        Item::Whiteout => (
            tar::EntryType::Regular,
            0o644,
            Timestamp::default(),
            &NO_XATTRS,
        ),
        Item::SyntheticDir => {
            name.push(b'/');
            (
                tar::EntryType::Directory,
                SYNTHETIC_DIR_MODE,
                Timestamp::default(),
                &NO_XATTRS,
            )
        }
        Item::HardLink { entry, target } => {
            linkname = Some(target);
            (tar::EntryType::Link, entry.mode, entry.mtime, &entry.xattrs)
        }
        Item::Entry(entry) => {
            let ty = match &entry.kind {
                EntryKind::Dir => {
                    name.push(b'/');
                    tar::EntryType::Directory
                }
                EntryKind::File {
                    size: s, blake3, ..
                } => {
                    size = *s;
                    content = Some(blake3);
                    tar::EntryType::Regular
                }
                EntryKind::Symlink { target } => {
                    linkname = Some(target);
                    tar::EntryType::Symlink
                }
                EntryKind::Fifo => tar::EntryType::Fifo,
                EntryKind::CharDevice { rdev } => {
                    set_device(&mut header, *rdev);
                    tar::EntryType::Char
                }
                EntryKind::BlockDevice { rdev } => {
                    set_device(&mut header, *rdev);
                    tar::EntryType::Block
                }
                EntryKind::Socket => unreachable!("plans leave sockets out"),
            };
            (ty, entry.mode, entry.mtime, &entry.xattrs)
        }
    };
    header.set_entry_type(ty);
    header.set_mode(mode & 0o7777);
    header.set_uid(0);
    header.set_gid(0);
    // Sizes beyond the octal field are written in the GNU base-256 form (tar crate) and,
    // for PAX readers, as a `size` record.
    header.set_size(size);

    let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if mtime.nsec != 0 || !(0..=USTAR_MAX as i64).contains(&mtime.sec) {
        pax.push((b"mtime".to_vec(), pax_time(mtime).into_bytes()));
    }
    header.set_mtime(if (0..=USTAR_MAX as i64).contains(&mtime.sec) {
        mtime.sec as u64
    } else {
        0
    });
    if name.len() > 100 {
        pax.push((b"path".to_vec(), name.clone()));
    }
    set_field(&mut header.as_old_mut().name, &name);
    if let Some(l) = linkname {
        if l.len() > 100 {
            pax.push((b"linkpath".to_vec(), l.to_vec()));
        }
        set_field(&mut header.as_old_mut().linkname, l);
    }
    if size > USTAR_MAX {
        pax.push((b"size".to_vec(), size.to_string().into_bytes()));
    }
    for (k, v) in xattrs {
        if k.contains(&b'=') {
            return Err(TarError::XattrName {
                path: lossy(path),
                name: lossy(k),
            });
        }
        pax.push(([b"SCHILY.xattr.", &k[..]].concat(), v.clone()));
    }
    if !pax.is_empty() {
        write_pax(&pax, out)?;
    }
    header.set_cksum();
    out.write_all(header.as_bytes()).map_err(TarError::Write)?;
    if let Some(hash) = content {
        let mut written = 0u64;
        let mut write_error = None;
        let streamed = blobs.stream(hash, Expect::Exactly(size), |chunk| {
            written += chunk.len() as u64;
            if written > size {
                return Ok(()); // reported below; the tar must not grow past the header
            }
            out.write_all(chunk).map_err(|e| {
                let copy = io::Error::new(e.kind(), e.to_string());
                write_error = Some(e);
                CheckpointError::io("write the layer", "", copy)
            })
        });
        if let Some(e) = write_error {
            return Err(TarError::Write(e));
        }
        streamed.map_err(TarError::Blob)?;
        if written != size {
            return Err(TarError::SizeMismatch {
                path: lossy(path),
                expected: size,
                found: written,
            });
        }
        pad(size, out)?;
    }
    Ok(())
}

fn set_device(header: &mut tar::Header, rdev: u64) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    // Both fit 7 octal digits for every device Linux creates; a larger number is written
    // truncated rather than failing the whole export.
    let _ = header.set_device_major(major as u32);
    let _ = header.set_device_minor(minor as u32);
}

/// Copies `value` into a NUL-padded header field, truncated to the field (the full value
/// is then in a PAX record).
fn set_field(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    field[n..].fill(0);
}

/// A PAX time: seconds, and nanoseconds as 9 digits when not zero. Negative times with a
/// fraction count down from the second above (-1.5 s is `sec -2, nsec 5e8`).
pub fn pax_time(t: Timestamp) -> String {
    if t.nsec == 0 {
        return t.sec.to_string();
    }
    if t.sec >= 0 {
        format!("{}.{:09}", t.sec, t.nsec)
    } else {
        format!("-{}.{:09}", -(t.sec + 1), 1_000_000_000 - t.nsec)
    }
}

/// One PAX record: `LEN KEY=VALUE\n`, LEN counting its own digits.
pub fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // space, `=`, newline
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut r = len.to_string().into_bytes();
    r.push(b' ');
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// An extended header (type `x`) for the next entry, with a fixed name and metadata.
fn write_pax(
    records: &[(Vec<u8>, Vec<u8>)],
    out: &mut (impl Write + ?Sized),
) -> Result<(), TarError> {
    let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    set_field(&mut h.as_old_mut().name, b"PaxHeader");
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(body.len() as u64);
    h.set_cksum();
    out.write_all(h.as_bytes()).map_err(TarError::Write)?;
    out.write_all(&body).map_err(TarError::Write)?;
    pad(body.len() as u64, out)
}

fn pad(len: u64, out: &mut (impl Write + ?Sized)) -> Result<(), TarError> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        out.write_all(&[0u8; BLOCK][..BLOCK - rem])
            .map_err(TarError::Write)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        for (k, v) in [("mtime", "1.5"), ("path", &"x".repeat(95)[..]), ("a", "")] {
            let r = pax_record(k.as_bytes(), v.as_bytes());
            let text = String::from_utf8(r.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "{text:?}");
        }
    }

    #[test]
    fn pax_times_keep_nanoseconds_and_negative_seconds() {
        let t = |sec, nsec| pax_time(Timestamp { sec, nsec });
        assert_eq!(t(1, 0), "1");
        assert_eq!(t(1700000000, 12), "1700000000.000000012");
        assert_eq!(t(-2, 500_000_000), "-1.500000000");
        assert_eq!(t(-1, 0), "-1");
    }
}
