//! A phase process that waits for the builder after its dump and goes on into the next
//! phase when the next phase starts from the state it dumped (docs/state-carry.md): the
//! pipes it is driven by, the wait for its pause or its end, and the test of whether it
//! can go on. Its code is `crate::shell::driver`'s.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, ExitStatus};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use crate::shell::declare::Attributes;
use crate::shell::state::ShellState;

/// Without a pidfd (Linux before 5.3), how often a wait for a pause looks whether the process
/// ended instead (a failed phase, an `exit` in a phase): the most a failure's report can be
/// late there.
const EXIT_CHECK: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 20_000_000,
};

/// The builder's ends of the two pipes its phase processes open as `/proc/$PPID/fd/N`
/// (close-on-exec: no process inherits them). A process writes one byte into the pause pipe
/// once it has dumped its state, then reads one line from the go pipe.
pub struct PhasePipes {
    paused_read: File,
    paused_write: OwnedFd,
    go_read: OwnedFd,
    go_write: File,
}

/// A phase process that has dumped its state and waits.
pub struct Waiting {
    pub child: Child,
    /// The state it dumped.
    pub state: ShellState,
}

/// How a wait for a phase process ended.
pub enum StepEnd {
    /// It dumped its state and waits.
    Paused,
    /// It ended.
    Exited(ExitStatus),
}

impl PhasePipes {
    pub fn new() -> io::Result<Self> {
        // The builder's read end does not block: a pause byte left by a process that then
        // died is drained before the next process starts.
        let (paused_read, paused_write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let (go_read, go_write) = pipe_with(PipeFlags::CLOEXEC)?;
        Ok(PhasePipes {
            paused_read: File::from(paused_read),
            paused_write,
            go_read,
            go_write: File::from(go_write),
        })
    }

    /// The fd a process writes its pause byte to.
    pub fn paused_fd(&self) -> i32 {
        self.paused_write.as_raw_fd()
    }

    /// The fd a waiting process reads its go line from.
    pub fn go_fd(&self) -> i32 {
        self.go_read.as_raw_fd()
    }

    /// Empties the pause pipe (before a new process starts).
    pub fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while matches!(self.paused_read.read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Lets the waiting process run the code of the next memory file. A process that is gone
    /// is seen by the wait that follows.
    pub fn go(&mut self) -> io::Result<()> {
        match self.go_write.write_all(b"go\n") {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }

    /// Waits until `child` writes its pause byte or ends. Its end wakes the wait through a
    /// pidfd where the kernel has them; elsewhere the wait looks every 20 ms. (Only
    /// this thread reaps the child, so its pid still names it here.)
    pub fn wait(&mut self, child: &mut Child) -> io::Result<StepEnd> {
        let pidfd = pidfd_open(Pid::from_child(child), PidfdFlags::empty()).ok();
        loop {
            let ready = match &pidfd {
                Some(pidfd) => poll(
                    &mut [
                        PollFd::new(&self.paused_read, PollFlags::IN),
                        PollFd::new(pidfd, PollFlags::IN),
                    ],
                    None,
                ),
                None => poll(
                    &mut [PollFd::new(&self.paused_read, PollFlags::IN)],
                    Some(&EXIT_CHECK),
                ),
            };
            match ready {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let mut byte = [0u8; 1];
            match self.paused_read.read(&mut byte) {
                Ok(1) => return Ok(StepEnd::Paused),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if let Some(status) = child.try_wait()? {
                return Ok(StepEnd::Exited(status));
            }
        }
    }
}

/// Whether a process that dumped `live` can run the next phase from `next` itself: `next`
/// is that state, but for `curPhase` (a phase that starts no process sets it; the code that
/// goes on sets it again) and the traps of the levels around `genericBuild` (the builder's
/// own record; the process holds them there unchanged). A `curPhase` with attributes
/// (readonly, integer, …) keeps the process from going on, as it keeps a phase from being
/// skipped, and so does a `TMOUT` (it may have ended the wait: `read` times out by it) or a
/// variable of the wait's own name.
pub fn goes_on(live: &ShellState, next: &ShellState) -> bool {
    if live.variable("TMOUT").is_some() || live.variable("__cpb_go").is_some() {
        return false;
    }
    let plain = |s: &ShellState| {
        let mut s = s.clone();
        s.outer_traps = Default::default();
        s.variables.retain(|v| v.name != "curPhase");
        s
    };
    let plain_cur_phase = |s: &ShellState| {
        s.variable("curPhase")
            .is_none_or(|v| v.attributes == Attributes::default())
    };
    plain_cur_phase(live) && plain_cur_phase(next) && plain(live) == plain(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::declare::{Value, Variable};

    fn state_with(vars: &[(&str, &str)]) -> ShellState {
        ShellState {
            variables: vars
                .iter()
                .map(|(n, v)| Variable {
                    name: (*n).into(),
                    attributes: Attributes::default(),
                    value: Value::Scalar(v.as_bytes().to_vec().into()),
                })
                .collect(),
            ..ShellState::default()
        }
    }

    #[test]
    fn a_process_goes_on_from_its_own_state_whatever_the_current_phase() {
        let live = state_with(&[("curPhase", "buildPhase"), ("x", "1")]);
        let skipped = state_with(&[("curPhase", "checkPhase"), ("x", "1")]);
        assert!(goes_on(&live, &live));
        assert!(goes_on(&live, &skipped));
        let mut outer = live.clone();
        outer.outer_traps = b"trap -- 'echo' DEBUG\n".to_vec().into();
        assert!(goes_on(&live, &outer));

        // Another state: restored from a checkpoint, or changed by the builder.
        assert!(!goes_on(
            &live,
            &state_with(&[("curPhase", "buildPhase"), ("x", "2")])
        ));
        let mut cwd = live.clone();
        cwd.cwd = b"/elsewhere".to_vec().into();
        assert!(!goes_on(&live, &cwd));

        // A curPhase with attributes, or a TMOUT: a process of its own.
        let mut readonly = live.clone();
        readonly.variables[0].attributes.readonly = true;
        assert!(!goes_on(&readonly, &readonly));
        let timeout = state_with(&[("TMOUT", "5"), ("curPhase", "buildPhase"), ("x", "1")]);
        assert!(!goes_on(&timeout, &timeout));
    }

    #[test]
    fn a_wait_sees_the_pause_byte_and_the_end() {
        let mut pipes = PhasePipes::new().unwrap();
        let paused = format!("/proc/{}/fd/{}", std::process::id(), pipes.paused_fd());
        let go = format!("/proc/{}/fd/{}", std::process::id(), pipes.go_fd());
        // Pauses once, goes on when told, then ends with status 3.
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "printf . >{paused}; read -r line <{go}; [ \"$line\" = go ] && exit 3"
            ))
            .spawn()
            .unwrap();
        assert!(matches!(pipes.wait(&mut child).unwrap(), StepEnd::Paused));
        pipes.go().unwrap();
        match pipes.wait(&mut child).unwrap() {
            StepEnd::Exited(status) => assert_eq!(status.code(), Some(3)),
            StepEnd::Paused => panic!("paused twice"),
        }
        pipes.drain();
    }
}
