//! A small work pool for the engine's I/O: items spread over scoped threads, results in
//! input order, the first error stops the rest; a pool may start on some cores and take the
//! rest once its caller waits for it (a [`Gate`]). Used by snapshots and blob storage.

use super::error::{CheckpointError, Result};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// A one-way signal between threads: closed until [`Gate::open`], open for good after.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Opens the gate and wakes every thread waiting at it.
    pub fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.opened.notify_all();
    }

    /// Waits until the gate is open.
    fn wait(&self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        while !*open {
            open = self.opened.wait(open).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Opens a gate when dropped: a worker that leaves the pool, by running out of items, by an
/// error or by a panic, lets the threads waiting at the gate in to find that out too.
struct OpenOnDrop<'g>(Option<&'g Gate>);

impl Drop for OpenOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(gate) = self.0 {
            gate.open();
        }
    }
}

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
    run_parallel_widening(items, threads, None, f)
}

/// [`run_parallel`] on `threads` threads, and with `widen = Some((more, gate))` on `more`
/// threads from the moment `gate` opens (the caller opens it when it starts waiting for the
/// results: work that ran beside a phase then takes the cores the phase has left). The
/// threads beyond `threads` wait at the gate; the first worker to leave opens it, so none
/// waits for a gate nobody opens. With no more items than `threads` it is [`run_parallel`]
/// (no thread would find an item behind the gate). Results come in input order either way.
pub(crate) fn run_parallel_widening<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    widen: Option<(usize, &Gate)>,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let (most, gate) = match widen {
        Some((more, gate)) if more > threads && items.len() > threads => (more, Some(gate)),
        _ => (threads, None),
    };
    if most <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let most = most.clamp(1, items.len().max(1));
    let from_start = threads.clamp(1, most);
    let parts: Vec<Result<Vec<(usize, R)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..most)
            .map(|k| {
                let (next, failed, f) = (&next, &failed, &f);
                s.spawn(move || {
                    if k >= from_start {
                        if let Some(gate) = gate {
                            gate.wait();
                        }
                    }
                    let _leaving = OpenOnDrop(gate);
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

    #[test]
    fn a_widening_pool_takes_its_other_threads_once_the_gate_opens() {
        use std::collections::HashSet;
        use std::sync::mpsc;
        use std::time::Duration;
        let items: Vec<u32> = (0..40).collect();
        let gate = Gate::new();
        // Before the gate opens, one thread does every item it takes (the items wait for
        // the test to let them through one by one); after, a second thread joins.
        let (tx, rx) = mpsc::channel::<()>();
        let rx = Mutex::new(rx);
        let opened = AtomicBool::new(false);
        let before = Mutex::new(HashSet::new());
        let after = Mutex::new(HashSet::new());
        let result = std::thread::scope(|s| {
            let pool = s.spawn(|| {
                run_parallel_widening(&items, 1, Some((2, &gate)), |&i| {
                    let me = std::thread::current().id();
                    if opened.load(Ordering::SeqCst) {
                        // Each item after the gate waits (5 s at most) until both threads
                        // have taken one.
                        after.lock().unwrap().insert(me);
                        let waiting = std::time::Instant::now();
                        while after.lock().unwrap().len() < 2
                            && waiting.elapsed() < Duration::from_secs(5)
                        {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    } else {
                        rx.lock().unwrap().recv().unwrap();
                        before.lock().unwrap().insert(me);
                    }
                    Ok(i)
                })
            });
            for _ in 0..10 {
                tx.send(()).unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
            opened.store(true, Ordering::SeqCst);
            // The worker may be waiting for one more message already.
            tx.send(()).unwrap();
            gate.open();
            pool.join().unwrap()
        });
        assert_eq!(result.expect("no error"), items, "results in input order");
        assert_eq!(
            before.lock().unwrap().len(),
            1,
            "one thread before the gate"
        );
        assert_eq!(after.lock().unwrap().len(), 2, "two threads after it");

        // A gate nobody opens: the first worker to run out of items lets the others in.
        let never = Gate::new();
        let quick = run_parallel_widening(&items, 1, Some((3, &never)), |&i| Ok(i * 2));
        assert_eq!(quick.expect("no error").len(), items.len());
        // Nor does an error or a panic leave a thread at the gate.
        let stuck = Gate::new();
        let failed = run_parallel_widening(&items, 1, Some((2, &stuck)), |&i| {
            if i == 5 {
                Err(CheckpointError::WorkerPanicked)
            } else {
                Ok(i)
            }
        });
        assert!(matches!(failed, Err(CheckpointError::WorkerPanicked)));
        let panicking = Gate::new();
        let panicked = run_parallel_widening(&items, 1, Some((2, &panicking)), |&i| {
            assert!(i != 7, "a worker panics");
            Ok(i)
        });
        assert!(matches!(panicked, Err(CheckpointError::WorkerPanicked)));
    }
}
