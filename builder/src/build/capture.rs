//! The `__capture` helper: run by a phase's bash at the end of the phase, it reports what
//! only the process itself knows (umask, limits, environment order, where fds 1 and 2 point).

use crate::shell::state::{ProcessFacts, ResourceLimit};
use crate::shell::ByteString;
use rustix::fs::Mode;
use rustix::process::{getrlimit, umask, Resource};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

/// Resources carried between phases (what `ulimit` can change). Recorded by their Linux
/// numbers, which rustix's `Resource` has as its values.
pub const RESOURCES: &[Resource] = &[
    Resource::Cpu,
    Resource::Fsize,
    Resource::Data,
    Resource::Stack,
    Resource::Core,
    Resource::Nproc,
    Resource::Nofile,
    Resource::Memlock,
    Resource::As,
    Resource::Locks,
    Resource::Sigpending,
    Resource::Msgqueue,
    Resource::Nice,
    Resource::Rtprio,
    Resource::Rttime,
];

/// The current process's resource limits (`RLIM_INFINITY` for an unlimited one, as the
/// kernel reports it).
pub fn current_limits() -> Vec<ResourceLimit> {
    RESOURCES
        .iter()
        .map(|&r| {
            let lim = getrlimit(r);
            ResourceLimit {
                resource: r as i32,
                soft: lim.current.unwrap_or(libc::RLIM_INFINITY),
                hard: lim.maximum.unwrap_or(libc::RLIM_INFINITY),
            }
        })
        .collect()
}

/// The current umask (read without changing it for longer than one syscall pair).
pub fn current_umask() -> u32 {
    let old = umask(Mode::from_raw_mode(0o022));
    umask(old);
    old.as_raw_mode()
}

/// Where `/proc/<pid>/fd/<fd>` points, when that is a path (not a pipe or socket).
fn fd_target(pid: i32, fd: i32) -> Option<ByteString> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    let bytes = link.as_os_str().as_bytes();
    bytes.starts_with(b"/").then(|| ByteString(bytes.to_vec()))
}

/// Runs the helper: writes the `capture` section for the dump to stdout.
pub fn run(nonce: &str) -> std::io::Result<()> {
    let bash = std::os::unix::process::parent_id() as i32;
    // The builder is bash's parent.
    let builder = std::fs::read_to_string(format!("/proc/{bash}/stat"))
        .ok()
        .and_then(|s| {
            let after = &s[s.rfind(')')? + 2..];
            after.split(' ').nth(1)?.parse::<i32>().ok()
        });
    let redirected = |fd: i32| -> Option<ByteString> {
        let target = fd_target(bash, fd)?;
        match builder.and_then(|b| fd_target(b, fd)) {
            Some(original) if original == target => None,
            _ => Some(target),
        }
    };
    let facts = ProcessFacts {
        umask: current_umask(),
        limits: current_limits(),
        stdout_target: redirected(1),
        stderr_target: redirected(2),
        physical_cwd: std::env::current_dir()
            .map(|p| ByteString(p.as_os_str().as_bytes().to_vec()))
            .unwrap_or_default(),
        environ: std::env::vars_os()
            .map(|(k, v)| {
                let mut e = k.as_bytes().to_vec();
                e.push(b'=');
                e.extend_from_slice(v.as_bytes());
                ByteString(e)
            })
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(format!("\n#CPB-{nonce} capture\n").as_bytes())?;
    out.write_all(&facts.encode())?;
    out.flush()
}
