//! Signals and process groups of a build: how SIGPIPE was inherited (passed on to every step
//! as stock's bash passes it), termination signals forwarded to the running step's process
//! group, orphans reaped, the groups ended after a failure, and whether any process of the
//! build still runs (steps started, children left).

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use rustix::process::{Pid, Signal, WaitIdOptions, WaitOptions};

static CURRENT_GROUP: AtomicI32 = AtomicI32::new(0);
static RECEIVED_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Whether SIGPIPE was ignored when the builder started (see [`note_inherited`]).
static SIGPIPE_INHERITED_IGNORED: AtomicBool = AtomicBool::new(false);
/// Whether the builder is a subreaper (every orphaned descendant becomes its child).
static SUBREAPER: AtomicBool = AtomicBool::new(false);
/// Step processes started so far.
static STEPS_STARTED: AtomicU64 = AtomicU64::new(0);
/// The phase process waiting for the builder's word (0: none): it runs nothing meanwhile.
static WAITING: AtomicI32 = AtomicI32::new(0);

/// Notes how SIGPIPE was set when the process started, then ignores it (the builder wants
/// `EPIPE` from a closed pipe, not death). Called first thing in `main`, which is the
/// binary's own C `main`, so Rust's runtime has not changed SIGPIPE yet.
pub fn note_inherited() {
    // SAFETY: reading the disposition into a zeroed struct we own, then setting a constant one.
    // Stays `unsafe`: rustix offers sigaction only as an unsafe call for runtimes.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut current) == 0 {
            SIGPIPE_INHERITED_IGNORED
                .store(current.sa_sigaction == libc::SIG_IGN, Ordering::SeqCst);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Makes `cmd`'s child start with SIGPIPE ignored if the builder started so (Rust resets it to
/// the default action in every child it spawns).
pub fn keep_inherited(cmd: &mut Command) {
    if !SIGPIPE_INHERITED_IGNORED.load(Ordering::SeqCst) {
        return;
    }
    // SAFETY: the closure only calls signal(2), which is async-signal-safe. Stays `unsafe`:
    // `pre_exec` itself is an unsafe fn.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            Ok(())
        });
    }
}

/// The process group led by `pid`, if it names one (0 and below name none).
fn group(pid: i32) -> Option<Pid> {
    if pid > 0 {
        Pid::from_raw(pid)
    } else {
        None
    }
}

extern "C" fn forward_signal(sig: libc::c_int) {
    RECEIVED_SIGNAL.store(sig, Ordering::SeqCst);
    // rustix's kill is the bare system call, so async-signal-safe; only the signals
    // installed below (all named) reach this handler.
    if let (Some(pgid), Some(sig)) = (
        group(CURRENT_GROUP.load(Ordering::SeqCst)),
        Signal::from_named_raw(sig),
    ) {
        let _ = rustix::process::kill_process_group(pgid, sig);
    }
}

/// Forwards termination signals to the running step's process group. A signal the builder
/// was started with ignored stays ignored, so every step inherits that as stock's bash does
/// (it lists such signals as `trap -- '' SIGHUP`); a handler would be reset to the default
/// action across exec instead.
pub fn install_forwarding() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: sigaction with a null new action only reads the current disposition into
        // a zeroed struct we own. Stays `unsafe`, as in `note_inherited`.
        let ignored = unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == libc::SIG_IGN
        };
        if ignored {
            continue;
        }
        // SAFETY: installing a handler that only touches atomics and calls kill. Stays
        // `unsafe`: installing a handler has no safe form.
        unsafe {
            libc::signal(sig, forward_signal as *const () as libc::sighandler_t);
        }
    }
    // Orphaned background jobs of a phase come back to us, so they can be reaped and ended.
    // The kernel reads the argument as a flag; `Pid::INIT` passes 1, as before.
    let subreaper = rustix::process::set_child_subreaper(Some(Pid::INIT)).is_ok();
    SUBREAPER.store(subreaper, Ordering::SeqCst);
}

/// Counts a step about to start, in a new process or in the one that waits
/// (see [`steps_started`]).
pub fn step_starting() {
    STEPS_STARTED.fetch_add(1, Ordering::SeqCst);
}

/// How many steps the build has started so far: equal at two moments, with
/// [`no_descendants`] true at the first, nothing of the build ran in between.
pub fn steps_started() -> u64 {
    STEPS_STARTED.load(Ordering::SeqCst)
}

/// Notes the phase process that waits for the builder's word (0: none).
pub fn set_waiting(pid: i32) {
    WAITING.store(pid, Ordering::SeqCst);
}

/// True when no process the build started is still running: the builder, a subreaper (or
/// the sandbox's PID 1), has no child left once those that exited are reaped, and every
/// descendant a step left behind would be its child. A phase process that waits for the
/// builder ([`set_waiting`]) runs nothing: it counts only by its own children. False when
/// that cannot be known (not a subreaper, or `/proc` does not list children) or a process
/// remains.
pub fn no_descendants() -> bool {
    if !SUBREAPER.load(Ordering::SeqCst) && rustix::process::getpid() != Pid::INIT {
        return false;
    }
    reap_orphans();
    let waiting = WAITING.load(Ordering::SeqCst);
    if waiting != 0 {
        let children = |task: &str| -> Option<Vec<i32>> {
            let text = std::fs::read_to_string(format!("{task}/children")).ok()?;
            text.split_whitespace().map(|p| p.parse().ok()).collect()
        };
        let own = || -> Option<bool> {
            let mut mine = Vec::new();
            for task in std::fs::read_dir("/proc/self/task").ok()? {
                mine.extend(children(&task.ok()?.path().to_string_lossy())?);
            }
            Some(
                mine == [waiting]
                    && children(&format!("/proc/{waiting}/task/{waiting}"))?.is_empty(),
            )
        };
        return own().unwrap_or(false);
    }
    // Looks without reaping: ECHILD is "no children at all"; a child that has exited
    // since the reap above still counts as one.
    matches!(
        rustix::process::waitid(
            rustix::process::WaitId::All,
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
        ),
        Err(rustix::io::Errno::CHILD)
    )
}

/// The process group of the step now running (0: none), which termination signals go to.
pub fn set_current_group(pid: i32) {
    CURRENT_GROUP.store(pid, Ordering::SeqCst);
}

/// Reaps every child that has exited (orphaned background jobs come back to the builder, a
/// subreaper).
pub fn reap_orphans() {
    // `wait` is waitpid(-1, …): any child. It stops at none left to reap (`Ok(None)`) and at
    // no children at all or an interruption (`Err`).
    while let Ok(Some(_)) = rustix::process::wait(WaitOptions::NOHANG) {}
}

/// Ends every process group in `groups` (a failed build's, or before a build starts again
/// from scratch) and reaps what exited. After a successful build they are left running, as
/// stock leaves them, for Nix to end.
pub fn end_groups(groups: &[i32]) {
    // ESRCH when a group is gone is fine.
    for g in groups.iter().filter_map(|&g| group(g)) {
        let _ = rustix::process::kill_process_group(g, Signal::KILL);
    }
    reap_orphans();
}
