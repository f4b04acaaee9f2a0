//! What log readers (Nix's `@nix` protocol, nix-output-monitor, people) are told about work
//! the builder does outside a phase: phases restored instead of run, restores and long
//! snapshots. Texts are pure functions; the two writers only print them. It never decides
//! what is restored.
//!
//! Nix 2.8 reads the builder's stderr line by line and takes a line starting with `@nix `
//! as a JSON message (`handleJSONLogMessage`); `setPhase` becomes a `resSetPhase` (104)
//! result of the build's activity. nixpkgs' `showPhaseHeader` writes that line to
//! `$NIX_LOG_FD` (Nix sets it to 2) only when the variable is set; a restored phase gets
//! the same line, to the same fd, under the same condition.

use crate::checkpoint::{EntryKind, State};
use crate::shell::{ShellState, Value};
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::time::Duration;

/// A snapshot that takes longer than this gets a line saying what it hashed.
pub const SLOW_SNAPSHOT: Duration = Duration::from_secs(2);

/// The `@nix` line nixpkgs' `showPhaseHeader` prints for `phase`, byte for byte.
pub fn set_phase_line(phase: &str) -> String {
    format!("@nix {{ \"action\": \"setPhase\", \"phase\": \"{phase}\" }}\n")
}

/// The human line for a phase restored instead of run (`reason` as in the final summary).
pub fn restored_phase_line(phase: &str, reason: &str) -> String {
    format!("Restored phase: {phase} ({reason})\n")
}

/// Whether stdenv's `runPhase` skips `phase` silently (no header, no `setPhase`) in a
/// shell whose state was `before`: the `dont*` / `do*` flags nixpkgs' setup.sh reads,
/// with bash's `${x:-}` meaning (an array's element 0).
pub fn stdenv_skips(phase: &str, before: &ShellState) -> bool {
    let set = |name: &str| {
        before.variable(name).is_some_and(|v| match &v.value {
            Value::Scalar(s) => !s.as_bytes().is_empty(),
            Value::Indexed(items) => items
                .iter()
                .find(|(i, _)| *i == 0)
                .is_some_and(|(_, s)| !s.as_bytes().is_empty()),
            Value::Assoc(items) => items
                .iter()
                .find(|(k, _)| k.as_bytes() == b"0")
                .is_some_and(|(_, s)| !s.as_bytes().is_empty()),
            _ => false,
        })
    };
    match phase {
        "unpackPhase" => set("dontUnpack"),
        "patchPhase" => set("dontPatch"),
        "configurePhase" => set("dontConfigure"),
        "buildPhase" => set("dontBuild"),
        "checkPhase" => !set("doCheck"),
        "installPhase" => set("dontInstall"),
        "fixupPhase" => set("dontFixup"),
        "installCheckPhase" => !set("doInstallCheck"),
        "distPhase" => !set("doDist"),
        _ => false,
    }
}

/// Regular files and their bytes in every root of `state` (what a restore writes).
pub fn tree_size(state: &State) -> (u64, u64) {
    state
        .roots
        .values()
        .flat_map(|root| root.values())
        .filter_map(|entry| match entry.kind {
            EntryKind::File { size, .. } => Some(size),
            _ => None,
        })
        .fold((0, 0), |(files, bytes), size| (files + 1, bytes + size))
}

/// The line printed before restoring phases `first..=last` from `checkpoint`.
pub fn restoring_line(files: u64, bytes: u64, first: &str, last: &str, checkpoint: &str) -> String {
    let phases = if first == last {
        first.to_owned()
    } else {
        format!("{first} … {last}")
    };
    format!(
        "checkpoint-builder: restoring {files} files, {} ({phases}) from the checkpoint {checkpoint}\n",
        human_bytes(bytes)
    )
}

/// The line printed before an incremental restore after `patchPhase` is tried: the new
/// source is compared with the checkpoint's tree and laid over it (only what differs is
/// written, so there is no count to give before).
pub fn incremental_line(checkpoint: &str) -> String {
    format!(
        "checkpoint-builder: comparing the unpacked source with the checkpoint {checkpoint} to restore the phases after patchPhase over it\n"
    )
}

/// The line printed when a layer after `patchPhase` cannot be restored whole because a file
/// of it holds a piece of an earlier output path (`why`): the build restores through
/// `patchPhase` and resumes over the earlier tree instead.
pub fn piece_held_line(why: &str) -> String {
    format!(
        "checkpoint-builder: {why}; restoring the phases through patchPhase only, then the \
         earlier build's tree with what holds a piece left out, for the build to remake it\n"
    )
}

/// The line printed after a snapshot that took longer than [`SLOW_SNAPSHOT`].
pub fn slow_snapshot_line(
    step: &str,
    took: Duration,
    files_hashed: u64,
    bytes_hashed: u64,
) -> String {
    format!(
        "checkpoint-builder: snapshot after {step} took {:.1}s: hashed {files_hashed} changed files, {}\n",
        took.as_secs_f64(),
        human_bytes(bytes_hashed)
    )
}

/// The line for a `checkpointBase` that is not there in the build: Nix binds only a
/// derivation's inputs into the sandbox, so either the path was passed without string
/// context (not an input), or it was garbage-collected and passed that way because
/// `builtins.storePath` of a missing path fails at evaluation (docs/nix-tools.md).
pub fn missing_base_line(dir: &str) -> String {
    format!(
        "checkpoint-builder: checkpointBase {dir} is not in the build's store: it was garbage-collected, \
         or it was passed without string context and so is not an input of this derivation \
         (pass it with builtins.storePath); building from scratch\n"
    )
}

/// `1234567` → `1.2 MB` (decimal units, as `du --si`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Tells Nix and the reader that `phase` was restored: the `setPhase` line on `$NIX_LOG_FD`
/// when it is set (as stock), then the human line on stderr.
pub fn announce_restored(phase: &str, reason: &str) {
    if let Some(fd) = log_fd() {
        write_fd(fd, set_phase_line(phase).as_bytes());
    }
    eprint!("{}", restored_phase_line(phase, reason));
}

/// `$NIX_LOG_FD` as the builder got it from Nix, if it names a file descriptor.
fn log_fd() -> Option<RawFd> {
    std::env::var("NIX_LOG_FD").ok()?.trim().parse().ok()
}

fn write_fd(fd: RawFd, bytes: &[u8]) {
    if fd == 2 {
        let _ = std::io::stderr().write_all(bytes);
        return;
    }
    // SAFETY: the fd is borrowed for one write and never closed (ManuallyDrop); if it is not
    // open the write fails and the line is dropped, as bash's `>&$NIX_LOG_FD` would fail.
    // Stays `unsafe`: a descriptor known only by its number from the environment has no safe
    // handle (rustix's `BorrowedFd::borrow_raw` is unsafe for the same reason).
    let mut file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    let _ = file.write_all(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_phase_line_is_what_setup_sh_prints() {
        // printf "@nix { \"action\": \"setPhase\", \"phase\": \"%s\" }\n" "$phase"
        assert_eq!(
            set_phase_line("configurePhase"),
            "@nix { \"action\": \"setPhase\", \"phase\": \"configurePhase\" }\n"
        );
        let json = set_phase_line("buildPhase");
        let value: serde_json::Value =
            serde_json::from_str(json.trim_end().strip_prefix("@nix ").unwrap()).unwrap();
        assert_eq!(value["action"], "setPhase");
        assert_eq!(value["phase"], "buildPhase");
    }

    #[test]
    fn restoring_line_names_counts_phases_and_source() {
        assert_eq!(
            restoring_line(12, 3_400_000, "unpackPhase", "buildPhase", "/nix/store/x-checkpoint"),
            "checkpoint-builder: restoring 12 files, 3.4 MB (unpackPhase … buildPhase) from the checkpoint /nix/store/x-checkpoint\n"
        );
        assert!(restoring_line(1, 5, "a", "a", "c").contains("1 files, 5 bytes (a) from"));
    }

    #[test]
    fn skip_rules_follow_run_phase() {
        let with = |name: &str, value: &str| ShellState {
            variables: vec![crate::shell::Variable {
                name: name.to_owned(),
                attributes: Default::default(),
                value: Value::Scalar(value.as_bytes().to_vec().into()),
            }],
            ..ShellState::default()
        };
        let empty = ShellState::default();
        assert!(stdenv_skips("checkPhase", &empty));
        assert!(stdenv_skips("distPhase", &empty));
        assert!(!stdenv_skips("buildPhase", &empty));
        assert!(!stdenv_skips("myPhase", &empty));
        assert!(!stdenv_skips("checkPhase", &with("doCheck", "1")));
        assert!(stdenv_skips("checkPhase", &with("doCheck", "")));
        assert!(stdenv_skips("buildPhase", &with("dontBuild", "1")));
        assert!(!stdenv_skips("buildPhase", &with("dontBuild", "")));
    }

    #[test]
    fn slow_snapshot_and_missing_base_lines() {
        assert_eq!(
            slow_snapshot_line("buildPhase", Duration::from_millis(3140), 4210, 812_400_000),
            "checkpoint-builder: snapshot after buildPhase took 3.1s: hashed 4210 changed files, 812.4 MB\n"
        );
        let line = missing_base_line("/nix/store/x-checkpoint");
        assert!(
            line.starts_with("checkpoint-builder: checkpointBase /nix/store/x-checkpoint is not")
        );
        assert!(line.contains("garbage-collected") && line.contains("string context"));
        assert!(line.ends_with("building from scratch\n"));
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(2_500_000_000), "2.5 GB");
    }
}
