//! A small work pool for the engine's I/O: items spread over scoped threads, results in
//! input order, the first error stops the rest. Used by snapshots and blob storage.

use super::error::{CheckpointError, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Threads for work spread over every core: the machine's parallelism, 2 when it cannot be
/// told.
pub(crate) fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs `f` over `items` on up to `threads` threads; stops early on the first error. Asked
/// for one thread (or none), it runs `f` on the calling thread, in order: a caller that
/// measures its own thread's CPU time (the check beside the phases) sees the work.
pub(crate) fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let threads = threads.clamp(1, items.len().max(1));
    let parts: Vec<Result<Vec<(usize, R)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        match f(item) {
                            Ok(r) => done.push((i, r)),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok(done)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(CheckpointError::WorkerPanicked)))
            .collect()
    });
    let mut all = Vec::with_capacity(items.len());
    for p in parts {
        all.extend(p?);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_runs_on_the_caller_and_more_keep_the_order() {
        let me = std::thread::current().id();
        let items: Vec<u32> = (0..50).collect();
        let on_caller =
            run_parallel(&items, 1, |&i| Ok((i, std::thread::current().id()))).expect("no error");
        assert!(on_caller.iter().all(|&(_, t)| t == me));
        assert_eq!(on_caller.iter().map(|&(i, _)| i).collect::<Vec<_>>(), items);
        let spread =
            run_parallel(&items, 2, |&i| Ok((i, std::thread::current().id()))).expect("no error");
        assert!(spread.iter().all(|&(_, t)| t != me));
        assert_eq!(spread.iter().map(|&(i, _)| i).collect::<Vec<_>>(), items);
        // The first error stops the rest, on the caller too.
        let seen = AtomicUsize::new(0);
        let failed = run_parallel(&items, 1, |&i| {
            seen.fetch_add(1, Ordering::Relaxed);
            if i == 3 {
                Err(CheckpointError::WorkerPanicked)
            } else {
                Ok(i)
            }
        });
        assert!(matches!(failed, Err(CheckpointError::WorkerPanicked)));
        assert_eq!(seen.load(Ordering::Relaxed), 4);
    }
}
