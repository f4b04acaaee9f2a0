//! Thin wrappers over the `*at` syscalls restore needs (no symlink following, fd-relative),
//! through rustix's safe calls; no `unsafe` and no policy.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat, Timespec, Timestamps};

use super::manifest::Timestamp;

fn cstr(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

/// Permission bits for rustix, every bit kept as given (setuid, setgid and sticky too).
fn mode(bits: u32) -> Mode {
    Mode::from_bits_retain(bits)
}

fn openat_raw(dir: BorrowedFd<'_>, name: &[u8], flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    Ok(rustix::fs::openat(
        dir,
        c.as_c_str(),
        flags | OFlags::CLOEXEC,
        mode,
    )?)
}

/// Opens a directory given by a trusted path (symlinks in it are followed).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = cstr(path.as_os_str().as_bytes())?;
    Ok(rustix::fs::open(
        c.as_c_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens the directory `name` inside `dir`, refusing symlinks (ELOOP/ENOTDIR).
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    openat_raw(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
        Mode::empty(),
    )
}

/// Opens an existing non-symlink `name` inside `dir` read-only, for metadata updates.
pub(crate) fn open_nofollow_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<File> {
    openat_raw(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map(File::from)
}

/// Creates a new regular file (fails if anything exists at `name`, symlinks included).
pub(crate) fn create_file_at(dir: BorrowedFd<'_>, name: &[u8], bits: u32) -> io::Result<File> {
    openat_raw(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW,
        mode(bits),
    )
    .map(File::from)
}

/// Creates a directory.
pub(crate) fn mkdir_at(dir: BorrowedFd<'_>, name: &[u8], bits: u32) -> io::Result<()> {
    let c = cstr(name)?;
    Ok(rustix::fs::mkdirat(dir, c.as_c_str(), mode(bits))?)
}

/// Creates a symlink `name` → `target` (the target is stored, never followed).
pub(crate) fn symlink_at(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let t = cstr(target)?;
    let c = cstr(name)?;
    Ok(rustix::fs::symlinkat(t.as_c_str(), dir, c.as_c_str())?)
}

/// Creates a named pipe.
pub(crate) fn mkfifo_at(dir: BorrowedFd<'_>, name: &[u8], bits: u32) -> io::Result<()> {
    let c = cstr(name)?;
    // A fifo needs no device number.
    Ok(rustix::fs::mknodat(
        dir,
        c.as_c_str(),
        FileType::Fifo,
        mode(bits),
        0,
    )?)
}

/// Hardlinks `src_dir/src_name` (not following a symlink) as `dst_dir/dst_name`.
pub(crate) fn link_at(
    src_dir: BorrowedFd<'_>,
    src_name: &[u8],
    dst_dir: BorrowedFd<'_>,
    dst_name: &[u8],
) -> io::Result<()> {
    let s = cstr(src_name)?;
    let d = cstr(dst_name)?;
    // No flags: a final symlink is linked itself, never followed.
    Ok(rustix::fs::linkat(
        src_dir,
        s.as_c_str(),
        dst_dir,
        d.as_c_str(),
        AtFlags::empty(),
    )?)
}

/// Removes `name` from `dir` (a directory must be empty).
pub(crate) fn unlink_at(dir: BorrowedFd<'_>, name: &[u8], is_dir: bool) -> io::Result<()> {
    let c = cstr(name)?;
    let flags = if is_dir {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    Ok(rustix::fs::unlinkat(dir, c.as_c_str(), flags)?)
}

/// Renames within or across directories given by descriptors.
pub(crate) fn rename_at(
    src_dir: BorrowedFd<'_>,
    src_name: &[u8],
    dst_dir: BorrowedFd<'_>,
    dst_name: &[u8],
) -> io::Result<()> {
    let s = cstr(src_name)?;
    let d = cstr(dst_name)?;
    Ok(rustix::fs::renameat(
        src_dir,
        s.as_c_str(),
        dst_dir,
        d.as_c_str(),
    )?)
}

fn timestamps(t: Timestamp) -> Timestamps {
    let ts = Timespec {
        tv_sec: t.sec,
        tv_nsec: t.nsec.into(),
    };
    // atime is not recorded; it is set equal to mtime so restores are reproducible.
    Timestamps {
        last_access: ts,
        last_modification: ts,
    }
}

/// Sets atime and mtime of `name` in `dir` without following a symlink.
pub(crate) fn set_mtime_at(dir: BorrowedFd<'_>, name: &[u8], t: Timestamp) -> io::Result<()> {
    let c = cstr(name)?;
    Ok(rustix::fs::utimensat(
        dir,
        c.as_c_str(),
        &timestamps(t),
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// Sets atime and mtime of an open file or directory.
pub(crate) fn set_mtime_fd(fd: BorrowedFd<'_>, t: Timestamp) -> io::Result<()> {
    Ok(rustix::fs::futimens(fd, &timestamps(t))?)
}

/// Sets the permission bits of an open file or directory.
pub(crate) fn chmod_fd(fd: BorrowedFd<'_>, bits: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(fd, mode(bits))?)
}

/// Sets the permission bits of `name` in `dir`. Follows a final symlink, so callers use it
/// only on a fifo they have just created in a directory they created.
pub(crate) fn chmod_at(dir: BorrowedFd<'_>, name: &[u8], bits: u32) -> io::Result<()> {
    let c = cstr(name)?;
    Ok(rustix::fs::chmodat(
        dir,
        c.as_c_str(),
        mode(bits),
        AtFlags::empty(),
    )?)
}

/// Lstat of `name` in `dir` (never follows a final symlink).
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Stat> {
    let c = cstr(name)?;
    Ok(rustix::fs::statat(
        dir,
        c.as_c_str(),
        AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// Fstat of an open descriptor.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    Ok(rustix::fs::fstat(fd)?)
}

/// The names in the directory open as `dir` (without `.` and `..`), read through a
/// duplicate of the descriptor from the start of the directory.
pub(crate) fn read_dir_names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut d = Dir::new(dir.try_clone_to_owned()?)?;
    // The duplicate shares the offset, so start over.
    d.rewind();
    let mut names = Vec::new();
    for ent in d {
        let ent = ent?;
        let name: &CStr = ent.file_name();
        let name = name.to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// The file-type bits of a `stat`.
pub(crate) fn file_type(st: &Stat) -> libc::mode_t {
    st.st_mode & libc::S_IFMT
}
