//! Incremental rebuild after a source change (design §3, issue 4): the new source is unpacked
//! and patched as usual, then laid by content hash over the earlier build's tree after
//! `buildPhase`, and the build resumes at `buildPhase` so the build tool recompiles only what
//! the changed files touch.
//!
//! The rules (also in `docs/keys.md`):
//! - it applies when the earlier checkpoint has the same phases up to `buildPhase`, the same
//!   source root name, and every phase after `patchPhase` up to `buildPhase` would be reused
//!   if the source variables (`src`, `srcs`, `curSrc`, `patches`) and the unpack and patch
//!   phases' own variables (`postPatch`, `patchFlags`, …) were left out of the keys: their
//!   effect is in the tree, which is compared by content (`SOURCE_DATE_EPOCH` stays keyed: its
//!   effect is also in generated files make does not track, see [`plan::SOURCE_VARIABLES`]);
//! - a change to a build description file (Makefiles, `*.mk`, configure and CMake/Meson
//!   inputs, `*.in` templates) never resumes: those phases run on the fresh tree, as a clean
//!   build would; neither does a deleted compile unit (its object, or an archive member made
//!   from it, would outlive it);
//! - unchanged files keep the mtimes the earlier build recorded, changed ones get an mtime
//!   newer than every restored file, so make's timestamp rule sees exactly the change;
//! - a changed file make would not see (a header no dependency record of the earlier build
//!   names, see [`crate::reuse::incremental::dependencies`]) makes the compile units that include it count as
//!   changed.

pub mod dependencies;
pub mod ninja;

use crate::build::recorder::Recorder;
use crate::checkpoint::{
    classify, floor_after, max_mtime, overlay_diff, overlay_state, ContentHash, OverlayChange,
    RelPath, RewritePair, RootState, Timestamp,
};
use crate::reuse::base::BaseCheckpoint;
use crate::reuse::incremental::dependencies::{
    compile_units, forced_include_in, is_compile_unit, untracked_changes, Trees,
};
use crate::reuse::keys::phase_variables;
use crate::reuse::plan::{self, PhaseDecision, SOURCE_VARIABLES};
use crate::shell::declare::Value;
use crate::shell::ShellState;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where the build goes on after an incremental restore.
pub struct Resumed {
    /// Index (in the phase list) of the phase to run next.
    pub next_phase: usize,
    /// Shell state to run it with.
    pub state: ShellState,
    /// Decisions for the phases after `patchPhase` up to the next one to run (exclusive), and
    /// for that one.
    pub decisions: Vec<PhaseDecision>,
    /// (phase, state before, state after) of each phase taken over from the earlier build, for
    /// the caller to record as layers.
    pub adopted: Vec<(String, ShellState, ShellState)>,
}

/// Why an incremental restore was not done (for the explanation lines).
pub type NotResumed = String;

/// True for files whose change means the build description changed. `*.in` templates are
/// among them: configure (taken over, not rerun) turns them into files the build reads, such
/// as a `version.h` or a `.pc` file, and only some build systems regenerate those.
pub fn is_build_description(path: &[u8]) -> bool {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let name = String::from_utf8_lossy(name);
    matches!(
        name.as_ref(),
        "configure"
            | "configure.ac"
            | "configure.in"
            | "aclocal.m4"
            | "config.h.in"
            | "CMakeLists.txt"
            | "meson.build"
            | "meson_options.txt"
            | "meson.options"
            | "GNUmakefile"
            | "makefile"
    ) || name.starts_with("Makefile")
        || name.ends_with(".mk")
        || name.ends_with(".cmake")
        || name.ends_with(".m4")
        || name.ends_with(".am")
        || name.ends_with(".in")
}

/// The stdenv's own files in the build directory: they change every time and are laid over
/// like the rest, but are neither source changes worth reporting nor source files.
const STDENV_FILES: &[&str] = &["env-vars", ".attrs.json", ".attrs.sh"];

fn is_stdenv_file(p: &RelPath) -> bool {
    STDENV_FILES.iter().any(|f| p.as_bytes() == f.as_bytes())
}

/// The changed source paths that the earlier build itself changed after `patchPhase`
/// (`substituteInPlace` in `preConfigure`, a file generated over a source file, a source file
/// deleted): laying this build's version over the earlier tree would drop that edit, which a
/// clean build would make again.
fn edited_by_earlier_build(
    changes: &[(RelPath, OverlayChange)],
    old_source: &RootState,
    built: &RootState,
) -> Vec<RelPath> {
    changes
        .iter()
        .filter(|(p, _)| !is_stdenv_file(p))
        .filter(|(p, change)| match (old_source.get(p), built.get(p)) {
            (Some(o), Some(b)) if o.is_dir() && b.is_dir() => false,
            (Some(o), Some(b)) => classify(o, b).is_some(),
            // Deleted by the earlier build and by the new source: nothing to lose.
            (Some(_), None) => *change != OverlayChange::Removed,
            (None, Some(_)) => true,
            (None, None) => false,
        })
        .map(|(p, _)| p.clone())
        .collect()
}

/// The first `max` paths, comma-separated, with `…` when there are more.
fn short_list<T: std::fmt::Display>(paths: &[T], max: usize) -> String {
    let mut l: Vec<String> = paths.iter().take(max).map(|p| p.to_string()).collect();
    if paths.len() > max {
        l.push("…".into());
    }
    l.join(", ")
}

fn scalar(state: &ShellState, name: &str) -> Option<Vec<u8>> {
    match &state.variable(name)?.value {
        Value::Scalar(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

/// Tries to resume after `patchPhase` (at `patch_index` in `phases`) from `base`.
#[allow(clippy::too_many_arguments)]
pub fn try_resume(
    base: &BaseCheckpoint,
    rewrites: &[RewritePair],
    phases: &[String],
    patch_index: usize,
    after_patch: &ShellState,
    recorder: &mut Recorder,
    build_top: &Path,
    outputs: &[(String, PathBuf)],
) -> Result<Result<Resumed, NotResumed>, String> {
    let k = patch_index + 1; // base layer of patchPhase
    let same_prefix = base.layers.len() > k
        && base.layers[1..=k]
            .iter()
            .map(|l| &l.name)
            .eq(phases[..=patch_index].iter());
    if !same_prefix {
        return Ok(Err("the checkpoint's phases up to patchPhase differ".into()));
    }
    let (old_root, new_root) = (
        scalar(&base.layers[k].state, "sourceRoot"),
        scalar(after_patch, "sourceRoot"),
    );
    if old_root != new_root {
        return Ok(Err(format!(
            "the source root changed ({} → {}: a new version?), so the earlier tree does not fit",
            String::from_utf8_lossy(&old_root.unwrap_or_default()),
            String::from_utf8_lossy(&new_root.unwrap_or_default())
        )));
    }
    let rest = &phases[patch_index + 1..];
    let Some(b) = rest.iter().position(|p| p == "buildPhase") else {
        return Ok(Err("the build has no buildPhase".into()));
    };
    // What unpack and patch were told to do shows in the tree, which is compared by content:
    // the source variables and the unpack and patch phases' own variables are left out.
    let ignored: BTreeSet<String> = SOURCE_VARIABLES
        .iter()
        .map(|s| s.to_string())
        .chain(phase_variables("unpackPhase"))
        .chain(phase_variables("patchPhase"))
        .chain(["patches".to_owned()])
        .collect();
    let base_outputs: Vec<Vec<u8>> = base.outputs.values().cloned().collect();
    let plan = plan::plan_ignoring(
        &base.layers[k..],
        &base_outputs,
        after_patch,
        recorder.output_paths(),
        rewrites,
        rest,
        recorder.strict(),
        &ignored,
    );
    if plan.depth < b + 1 {
        let why = plan
            .decisions
            .iter()
            .find(|d| !d.reused)
            .map(|d| format!("{} {}", d.phase, d.reason))
            .unwrap_or_default();
        return Ok(Err(format!(
            "the phases up to buildPhase do not match: {why}"
        )));
    }

    // The trees: this build's source after patchPhase, as its layer just recorded it, and
    // the earlier build's after patch and after build, rewritten to this build's paths
    // (their blobs brought into this checkpoint on the way).
    let new_tree = recorder.recorded_state().root("build").clone();
    let old_tree = recorder
        .import_base_state(base, k as u32, rewrites)
        .map_err(|e| e.to_string())?
        .root("build")
        .clone();
    let changes = overlay_diff(&old_tree, &new_tree);
    let descriptions: Vec<String> = changes
        .iter()
        .filter(|(p, _)| is_build_description(p.as_bytes()))
        .map(|(p, _)| p.to_string())
        .collect();
    if !descriptions.is_empty() {
        return Ok(Err(format!(
            "build description files changed ({}): configure and build run on the new tree",
            descriptions.join(", ")
        )));
    }
    // A deleted compile unit leaves its object behind, and `ar r` keeps it in an archive
    // even when make rebuilds the archive: only a clean build drops it.
    let deleted_units: Vec<String> = changes
        .iter()
        .filter(|(p, c)| *c == OverlayChange::Removed && is_compile_unit(p.as_bytes()))
        .map(|(p, _)| p.to_string())
        .collect();
    if !deleted_units.is_empty() {
        return Ok(Err(format!(
            "source files were deleted ({}): their objects could outlive them in the earlier \
             tree, so configure and build run on the new tree",
            deleted_units.join(", ")
        )));
    }

    let mut want = recorder
        .import_base_state(base, (k + b + 1) as u32, rewrites)
        .map_err(|e| e.to_string())?;
    let restored = want.root("build");
    let edited = edited_by_earlier_build(&changes, &old_tree, restored);
    if !edited.is_empty() {
        return Ok(Err(format!(
            "the earlier build changed {} after patchPhase and the new source changes it too \
             (laid over, it would lose that edit): configure and build run on the new tree",
            short_list(&edited, 3)
        )));
    }
    // Changes make would not see by itself.
    let tracking = {
        let build_top_bytes = build_top.as_os_str().as_encoded_bytes();
        let values = after_patch.variables.iter().flat_map(|v| match &v.value {
            Value::Scalar(s) => vec![s.as_bytes()],
            Value::Indexed(items) => items.iter().map(|(_, s)| s.as_bytes()).collect(),
            Value::Assoc(items) => items.iter().map(|(_, s)| s.as_bytes()).collect(),
            _ => Vec::new(),
        });
        let trees = Trees {
            old_source: &old_tree,
            new_source: &new_tree,
            built: restored,
            build_top: build_top_bytes,
            forced_include_in_environment: forced_include_in(values),
        };
        let recorder: &Recorder = recorder;
        let read = |p: &RelPath, h: &ContentHash, new| {
            if new {
                std::fs::read(build_top.join(p.as_path())).ok()
            } else {
                recorder.read_blob(h).ok()
            }
        };
        untracked_changes(&changes, &trees, &read)
    };
    if !tracking.missing_prerequisites.is_empty() {
        return Ok(Err(format!(
            "deleted files are still prerequisites in the earlier build's dependency records ({}), \
             and nothing makes them: make would stop on them, so configure and build run on the \
             new tree",
            short_list(&tracking.missing_prerequisites, 3)
        )));
    }
    // Changed files get max(newest restored + 1 ns, now): strictly newer than every restored
    // file, and not in the future (make warns about clock skew and rebuilds again).
    // overlay_state adds one second to the floor it is given.
    let newest = max_mtime(restored).unwrap_or(Timestamp { sec: 0, nsec: 0 });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let floor = std::cmp::max(
        (newest.sec - 1, newest.nsec + 1),
        (now.as_secs() as i64 - 1, now.subsec_nanos()),
    );
    let floor = if floor.1 >= 1_000_000_000 {
        Timestamp {
            sec: floor.0 + 1,
            nsec: floor.1 - 1_000_000_000,
        }
    } else {
        Timestamp {
            sec: floor.0,
            nsec: floor.1,
        }
    };
    // The tree the build resumes on: the earlier tree after buildPhase with the source
    // changes laid over it. The live tree (the new source) is brought to it in place: only
    // build products and what differs are written.
    let (mut tree, report) =
        overlay_state(&old_tree, &new_tree, restored, floor).map_err(|e| e.to_string())?;
    // Untracked changes: the compile units that include them (all of them, when that cannot
    // be bounded) become as new as a changed file.
    let untracked = &tracking.untracked;
    let touched_units = if untracked.is_empty() {
        0
    } else {
        let changed_mtime = floor_after(floor);
        let units: Vec<RelPath> = match &tracking.affected_units {
            Some(units) => units.iter().cloned().collect(),
            None => compile_units(&tree),
        };
        for p in &units {
            if let Some(e) = tree.get_mut(p) {
                e.mtime = e.mtime.max(changed_mtime);
            }
        }
        units.len()
    };
    want.roots.insert("build".to_owned(), tree);
    recorder
        .bring_trees_to(&want, build_top, outputs)
        .map_err(|e| e.to_string())?;

    let changed: Vec<String> = report
        .changes
        .iter()
        .filter(|(p, _)| !is_stdenv_file(p))
        .map(|(p, _)| p.to_string())
        .collect();
    let listed = short_list(&changed, 5);
    let mut adopted = Vec::new();
    let mut decisions = Vec::new();
    let mut before = after_patch.clone();
    for (i, phase) in rest[..b].iter().enumerate() {
        let after = plan::with_variables_from(
            &plan::rewrite_state(&base.layers[k + i + 1].state, rewrites),
            &plan.changed_variables,
            after_patch,
        );
        adopted.push((phase.clone(), before.clone(), after.clone()));
        decisions.push(PhaseDecision {
            phase: phase.clone(),
            reused: true,
            reason: format!(
                "restored (incremental): {} source file(s) changed since the checkpoint",
                changed.len()
            ),
        });
        before = after;
    }
    let untracked_note = if untracked.is_empty() {
        String::new()
    } else {
        let which = match tracking.affected_units {
            Some(_) => format!("the {touched_units} compile unit(s) that include it"),
            None => format!(
                "all {touched_units} compile units (a computed or forced include hides which include it)"
            ),
        };
        format!(
            "; no dependency record of the earlier build names {} (dependency tracking off?), so {which} count as changed",
            short_list(untracked, 3)
        )
    };
    decisions.push(PhaseDecision {
        phase: "buildPhase".into(),
        reused: false,
        reason: format!(
            "ran incrementally over the earlier build's tree: {} changed path(s) ({listed}) are newer than every restored file{untracked_note}",
            changed.len()
        ),
    });
    Ok(Ok(Resumed {
        next_phase: patch_index + 1 + b,
        state: before,
        decisions,
        adopted,
    }))
}

#[cfg(test)]
mod tests {
    use super::{edited_by_earlier_build, is_build_description};
    use crate::checkpoint::overlay_diff;
    use crate::checkpoint::testutil::tree_of as tree;

    fn edited(old: &[(&str, &str)], new: &[(&str, &str)], built: &[(&str, &str)]) -> Vec<String> {
        let (old, new, built) = (tree(old), tree(new), tree(built));
        edited_by_earlier_build(&overlay_diff(&old, &new), &old, &built)
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn source_files_the_earlier_build_edited() {
        let old = [("p/a.c", "a"), ("p/b.c", "b"), ("env-vars", "1")];
        // preConfigure edited b.c; the new source changes a.c: nothing is lost.
        let built = [
            ("p/a.c", "a"),
            ("p/b.c", "B"),
            ("p/a.o", "o"),
            ("env-vars", "2"),
        ];
        let new = [("p/a.c", "a2"), ("p/b.c", "b"), ("env-vars", "3")];
        assert!(edited(&old, &new, &built).is_empty());
        // The new source changes b.c too: laying it over would drop the edit.
        let new = [("p/a.c", "a"), ("p/b.c", "b2"), ("env-vars", "3")];
        assert_eq!(edited(&old, &new, &built), ["p/b.c"]);
        // The new source adds a file where the build generated one.
        let new = [("p/a.c", "a"), ("p/b.c", "b"), ("p/a.o", "x")];
        assert_eq!(edited(&old, &new, &built), ["p/a.o"]);
        // The build deleted a.c; the new source changes it, or deletes it too.
        let built = [("p/b.c", "b")];
        assert_eq!(
            edited(&old, &[("p/a.c", "a2"), ("p/b.c", "b")], &built),
            ["p/a.c"]
        );
        assert!(edited(&old, &[("p/b.c", "b")], &built).is_empty());
    }

    #[test]
    fn build_descriptions() {
        for p in [
            "Makefile",
            "src/Makefile.in",
            "lib/Makefile.am",
            "configure.ac",
            "x/common.mk",
            "CMakeLists.txt",
            "src/version.h.in",
            "libfoo.pc.in",
        ] {
            assert!(is_build_description(p.as_bytes()), "{p}");
        }
        for p in [
            "src/main.c",
            "lib/x.h",
            "doc/readme.txt",
            "configure.log.txt",
            "src/main.in.c",
        ] {
            assert!(!is_build_description(p.as_bytes()), "{p}");
        }
    }
}
