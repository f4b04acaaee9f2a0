//! What Nix's log readers see of a build that restores some phases and runs others (issue 16):
//! nix-build's `--log-format internal-json` output (what nix-output-monitor reads) must
//! announce every phase, restored or run, as a `setPhase` result (type 104) of the build's
//! activity, in the phase order; restored phases carry a human marker saying why, and the
//! restore says what it writes before it writes it.
//!
//! Builds `tests/reuse-cases/cproject.nix` with real Nix: variant `a` from scratch, then
//! `install` (restores unpack … build, runs install and fixup) and `source` (runs unpack and
//! patch, restores configure incrementally, runs build …) with `a`'s checkpoint as base.

use integration_tests::outputs::output;
use integration_tests::reuse_cases::{base_attr, build_ok, case_file};
use integration_tests::BuildResult;
use std::path::Path;

const NAME: &str = "nixlog-cproject";

fn build(label: &str, variant: &str, base: Option<&Path>) -> BuildResult {
    let attrs = format!(
        "variant = \"{variant}\"; name = \"{NAME}\"; {}",
        base_attr(base)
    );
    build_ok(
        &case_file("nix-log-cases", label, "cproject", &attrs),
        label,
    )
}

/// Index of the first log line equal to `line` (trimmed), or a panic with the log.
fn line_index(result: &BuildResult, line: &str) -> usize {
    result
        .log_lines
        .iter()
        .position(|l| l.trim() == line)
        .unwrap_or_else(|| panic!("no line `{line}` in the log:\n{}", result.log_tail(80)))
}

/// The `Restored phase: P (reason)` marker of `phase`, if the log has one.
fn restored_marker<'a>(result: &'a BuildResult, phase: &str) -> Option<&'a str> {
    let prefix = format!("Restored phase: {phase} (");
    result
        .log_lines
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with(&prefix))
}

/// Checks one resumed build against the phases of the clean build `a`: same `setPhase`
/// sequence; `restored` phases have a marker whose reason starts with `reason_prefix` and no
/// `Running phase:` header; every other phase has the header and no marker; each header or
/// marker comes in phase order.
fn check_phases(a: &BuildResult, b: &BuildResult, restored: &[&str], reason_prefix: &str) {
    assert_eq!(
        b.phases,
        a.phases,
        "the resumed build must announce every phase, restored or run, in order\n{}",
        b.log_tail(80)
    );
    let mut last = 0;
    for phase in &a.phases {
        let at = if restored.contains(&phase.as_str()) {
            let marker = restored_marker(b, phase)
                .unwrap_or_else(|| panic!("no restored marker for {phase}\n{}", b.log_tail(80)));
            assert!(
                marker.starts_with(&format!("Restored phase: {phase} ({reason_prefix}")),
                "{marker}"
            );
            assert!(!b.ran_phase(phase), "{phase} ran although restored");
            line_index(b, marker)
        } else {
            assert!(
                restored_marker(b, phase).is_none(),
                "{phase} ran but is marked restored"
            );
            line_index(b, &format!("Running phase: {phase}"))
        };
        assert!(at >= last, "{phase} is announced out of order");
        last = at;
    }
}

#[test]
fn restored_phases_are_phases_to_nix_log_readers() {
    let a = build("a", "a", None);
    assert!(
        a.phases.len() >= 6
            && a.phases.iter().any(|p| p == "buildPhase")
            && a.phases.iter().any(|p| p == "installPhase"),
        "the clean build announces its phases: {:?}",
        a.phases
    );
    assert!(
        !a.log_lines.iter().any(|l| l.starts_with("Restored phase:")),
        "a build without a base restores nothing"
    );
    let a_ck = output(&a, true);

    // install: unpack … build restored at once, then install and fixup run.
    let b = build("install-from-a", "install", Some(&a_ck));
    let restored = ["unpackPhase", "patchPhase", "configurePhase", "buildPhase"];
    check_phases(&a, &b, &restored, "restored: inputs unchanged");
    // The restore is announced before any restored phase, with what it writes.
    // (checkPhase, skipped by stdenv without doCheck, is restored too: it has a layer.)
    let announce = format!(
        "(unpackPhase … checkPhase) from the checkpoint {}",
        a_ck.display()
    );
    let (at, line) = b
        .log_lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.starts_with("checkpoint-builder: restoring ") && l.ends_with(&announce))
        .unwrap_or_else(|| panic!("no restore announcement\n{}", b.log_tail(80)));
    let files: u64 = line["checkpoint-builder: restoring ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no file count in `{line}`"));
    assert!(
        files >= 5,
        "the tree after buildPhase has the sources and objects: {line}"
    );
    assert!(
        at < line_index(&b, restored_marker(&b, "unpackPhase").unwrap()),
        "the restore is announced before the phases it restores"
    );

    // source: unpack and patch run, configure is restored over the new source, build runs.
    let c = build("source-from-a", "source", Some(&a_ck));
    check_phases(&a, &c, &["configurePhase"], "restored (incremental)");
    // The comparison with the checkpoint's tree is announced before it starts.
    let compare = format!(
        "checkpoint-builder: comparing the unpacked source with the checkpoint {} to restore the phases after patchPhase over it",
        a_ck.display()
    );
    assert!(
        line_index(&c, &compare) < line_index(&c, restored_marker(&c, "configurePhase").unwrap()),
        "the incremental restore is announced before its phases"
    );
}
