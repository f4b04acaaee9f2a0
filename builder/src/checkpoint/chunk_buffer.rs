//! The engine's 1 MiB read buffers, reused: a small pool per thread. Streaming file after
//! file (a staged content read back, a blob decoded, a file read for a snapshot) with a new
//! zeroed megabyte each time cost more than the reads themselves when the files are small:
//! reading back the 5,000 staged objects of a 400 MB build directory spent 0.06 s zeroing
//! buffers, a third of that search's time (docs/benchmarks.md, "Session 22").

use std::cell::RefCell;
use std::io::{self, Read};
use std::path::Path;

use super::error::{CheckpointError, Result};

/// The size of a buffer.
pub(crate) const CHUNK: usize = 1 << 20;

/// Buffers a thread keeps between calls; deeper nesting allocates and drops its own.
const KEPT_PER_THREAD: usize = 4;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a buffer of [`CHUNK`] bytes from this thread's pool, holding whatever an
/// earlier user left in it (zeros the first time). A call inside `f` gets another buffer.
pub(crate) fn with_chunk_buffer<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = POOL
        .with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| vec![0u8; CHUNK]);
    let result = f(&mut buf);
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < KEPT_PER_THREAD {
            p.push(buf);
        }
    });
    result
}

/// Reads `reader` (the file at `path`, for errors) to its end through a buffer of the pool,
/// passing each chunk to `sink`; returns how many bytes it read.
pub(crate) fn read_in_chunks(
    reader: &mut impl Read,
    path: &Path,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    with_chunk_buffer(|buf| {
        let mut total = 0u64;
        loop {
            let n = match reader.read(buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CheckpointError::io("read", path, e)),
            };
            sink(&buf[..n])?;
            total += n as u64;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_a_nested_call_gets_another() {
        let address = |b: &mut [u8]| b.as_ptr() as usize;
        let (outer, inner) = with_chunk_buffer(|b| {
            assert_eq!(b.len(), CHUNK);
            b[0] = 7;
            (address(b), with_chunk_buffer(address))
        });
        assert_ne!(outer, inner);
        // Both went back to the pool: the same two serve the next calls, with what the last
        // user left in them.
        with_chunk_buffer(|b| {
            assert_eq!((address(b), b[0]), (outer, 7));
            assert_eq!(with_chunk_buffer(address), inner);
        });
    }
}
