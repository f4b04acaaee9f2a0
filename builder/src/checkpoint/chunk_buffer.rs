//! The engine's 1 MiB read buffers, reused: one pool for the process. Streaming file after
//! file (a staged content read back, a blob decoded, a file read for a snapshot) with a new
//! zeroed megabyte each time cost more than the reads themselves when the files are small:
//! reading back the 5,000 staged objects of a 400 MB build directory spent 0.06 s zeroing
//! buffers, a third of that search's time (docs/benchmarks.md, "Session 22"). The pool is
//! the process's, not each thread's: the workers of a parallel step are threads of their own
//! that end with it, and each used to zero (and fault in) buffers of its own.

use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;

use super::error::{CheckpointError, Result};

/// The size of a buffer.
pub(crate) const CHUNK: usize = 1 << 20;

/// Buffers the pool keeps between calls (a few for each core's worker, and their nested
/// calls); more at once are allocated and dropped.
const KEPT: usize = 8;

/// Buffers handed back, for the next calls on any thread.
struct ChunkPool {
    kept: Mutex<Vec<Vec<u8>>>,
    limit: usize,
}

impl ChunkPool {
    const fn new(limit: usize) -> Self {
        ChunkPool {
            kept: Mutex::new(Vec::new()),
            limit,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let taken = self.kept.lock().map(|mut k| k.pop()).unwrap_or(None);
        let mut buf = taken.unwrap_or_else(|| vec![0u8; CHUNK]);
        let result = f(&mut buf);
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() < self.limit {
                kept.push(buf);
            }
        }
        result
    }
}

static POOL: ChunkPool = ChunkPool::new(KEPT);

/// Runs `f` with a buffer of [`CHUNK`] bytes from the pool, holding whatever an earlier user
/// left in it (zeros the first time). A call inside `f` gets another buffer.
pub(crate) fn with_chunk_buffer<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    POOL.with(f)
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
        let pool = ChunkPool::new(KEPT);
        let address = |b: &mut [u8]| b.as_ptr() as usize;
        let (outer, inner) = pool.with(|b| {
            assert_eq!(b.len(), CHUNK);
            b[0] = 7;
            (address(b), pool.with(address))
        });
        assert_ne!(outer, inner);
        // Both went back to the pool: the same two serve the next calls, with what the last
        // user left in them.
        pool.with(|b| {
            assert_eq!((address(b), b[0]), (outer, 7));
            assert_eq!(pool.with(address), inner);
        });
    }

    #[test]
    fn a_buffer_handed_back_by_a_thread_that_ended_serves_another() {
        let pool = ChunkPool::new(KEPT);
        let address = |b: &mut [u8]| b.as_ptr() as usize;
        let first = std::thread::scope(|s| s.spawn(|| pool.with(address)).join().unwrap());
        let second = std::thread::scope(|s| s.spawn(|| pool.with(address)).join().unwrap());
        assert_eq!(first, second);
    }

    #[test]
    fn the_pool_keeps_no_more_than_its_limit() {
        let pool = ChunkPool::new(1);
        pool.with(|_| pool.with(|_| ()));
        assert_eq!(pool.kept.lock().unwrap().len(), 1);
    }
}
