//! Anonymous in-memory files (`memfd_create`) that bash reaches as `/proc/<builder>/fd/N`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd};

/// A memory-backed file owned by the builder; close-on-exec, so children never inherit it.
pub struct MemFile {
    file: File,
}

impl MemFile {
    pub fn new(name: &str) -> std::io::Result<Self> {
        let cname = std::ffi::CString::new(name).expect("no NUL in memfd name");
        // SAFETY: memfd_create with a valid C string; the returned fd is owned by the File.
        let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        Ok(MemFile {
            file: unsafe { File::from_raw_fd(fd) },
        })
    }

    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    /// Replaces the contents.
    pub fn set(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(bytes)
    }

    /// Empties the file.
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.set(&[])
    }

    /// The whole contents.
    pub fn read_all(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_end(&mut out)?;
        Ok(out)
    }
}
