//! The engine's 1 MiB read buffers, reused: a small pool per thread. Streaming file after
//! file (a staged content read back, a blob decoded, a file read for a snapshot) with a new
//! zeroed megabyte each time cost more than the reads themselves when the files are small:
//! reading back the 5,000 staged objects of a 400 MB build directory spent 0.06 s zeroing
//! buffers, a third of that search's time (docs/benchmarks.md, "Session 22").

use std::cell::RefCell;

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
