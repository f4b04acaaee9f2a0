//! Anonymous in-memory files (`memfd_create`) that bash reaches as `/proc/<builder>/fd/N`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;

/// A memory-backed file owned by the builder; close-on-exec, so children never inherit it.
pub struct MemFile {
    file: File,
}

impl MemFile {
    pub fn new(name: &str) -> std::io::Result<Self> {
        let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)?;
        Ok(MemFile {
            file: File::from(fd),
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
