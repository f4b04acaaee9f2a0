//! Incremental rebuild after a source change (design §3, issue 4), the effectful step: the new source is unpacked
//! and patched as usual, then laid by content hash over the earlier build's tree after
//! `buildPhase`, and the build resumes at `buildPhase` so the build tool recompiles only what
//! the changed files touch.
//!
//! The rules (pure, in [`rules`]; also in `docs/keys.md`):
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
pub mod rules;

use crate::checkpoint::{
    floor_after, max_mtime, overlay_diff, overlay_state, CheckpointError, ContentHash, RelPath,
    RewritePair, State, Timestamp,
};
use crate::reuse::base::BaseCheckpoint;
use crate::reuse::plan::PhaseDecision;
use crate::shell::declare::Value;
use crate::shell::ShellState;
use dependencies::{compile_units, forced_include_in, untracked_changes, Trees};
pub use rules::{is_build_description, NoResume};
use rules::{is_stdenv_file, PhaseMatch};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Where the build goes on after an incremental restore.
#[derive(Debug)]
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

/// The checkpoint this build is recording, as an incremental restore reads and writes it
/// (the build's recorder implements it; reuse does not depend on the build).
pub trait Recording {
    /// This build's output paths (and the checkpoint's), as normalisation masks them.
    fn output_paths(&self) -> &[Vec<u8>];
    /// Whether reuse is strict (every key must match exactly).
    fn strict(&self) -> bool;
    /// The earlier build's state after its layer `upto`, rewritten to this build's paths,
    /// with every blob it references brought into this checkpoint.
    fn import_base_state(
        &mut self,
        base: &BaseCheckpoint,
        upto: u32,
        rewrites: &[RewritePair],
    ) -> Result<State, CheckpointError>;
    /// The content of a blob this checkpoint holds, verified.
    fn read_blob(&self, hash: &ContentHash) -> Result<Vec<u8>, CheckpointError>;
    /// What the last recorded layer saw of each root.
    fn recorded_state(&self) -> &State;
    /// Brings the build directory (at `build_top`) and the missing outputs to `want` in
    /// place.
    fn bring_trees_to(
        &mut self,
        want: &State,
        build_top: &Path,
        outputs: &[(String, PathBuf)],
    ) -> Result<(), CheckpointError>;
}

/// What an attempt to resume after `patchPhase` came to.
#[derive(Debug)]
pub enum Resumption {
    /// The live tree is the earlier tree with the new source laid over: resume there.
    Resumed(Box<Resumed>),
    /// The rules say no: the build goes on on the new tree (nothing was restored).
    NotResumed(NoResume),
}

/// The incremental restore failed once it had started: content of the earlier checkpoint
/// may be in the build, which falls back to a clean build (docs/trust.md).
#[derive(Debug, Error)]
pub enum ResumeError {
    #[error("cannot import the earlier build's layer {layer}")]
    Import {
        layer: u32,
        #[source]
        source: CheckpointError,
    },
    #[error("cannot lay the new source over the earlier tree")]
    Overlay(#[source] CheckpointError),
    #[error("cannot bring the build directory and outputs to the resumed tree")]
    Restore(#[source] CheckpointError),
}

/// Tries to resume after `patchPhase` (at `patch_index` in `phases`) from `base`: the rules
/// first, then the earlier trees imported and compared with the new source, and, when every
/// rule allows it, the live tree brought to the earlier tree after `buildPhase` with the
/// source changes laid over.
#[allow(clippy::too_many_arguments)]
pub fn try_resume(
    base: &BaseCheckpoint,
    rewrites: &[RewritePair],
    phases: &[String],
    patch_index: usize,
    after_patch: &ShellState,
    recorder: &mut dyn Recording,
    build_top: &Path,
    outputs: &[(String, PathBuf)],
) -> Result<Resumption, ResumeError> {
    let base_outputs: Vec<Vec<u8>> = base.outputs.values().cloned().collect();
    let found = match rules::check_phases(
        &base.layers,
        &base_outputs,
        phases,
        patch_index,
        after_patch,
        recorder.output_paths(),
        rewrites,
        recorder.strict(),
    ) {
        Ok(found) => found,
        Err(no) => return Ok(Resumption::NotResumed(no)),
    };
    let PhaseMatch {
        patch_layer: k,
        build_offset: b,
        ..
    } = found;
    let import = |recorder: &mut dyn Recording, layer: usize| {
        recorder
            .import_base_state(base, layer as u32, rewrites)
            .map_err(|source| ResumeError::Import {
                layer: layer as u32,
                source,
            })
    };

    // The trees: this build's source after patchPhase, as its layer just recorded it, and
    // the earlier build's after patch and after build, rewritten to this build's paths
    // (their blobs brought into this checkpoint on the way).
    let new_tree = recorder.recorded_state().root("build").clone();
    let old_tree = import(recorder, k)?.root("build").clone();
    let changes = overlay_diff(&old_tree, &new_tree);
    if let Err(no) = rules::check_source_changes(&changes) {
        return Ok(Resumption::NotResumed(no));
    }
    let mut want = import(recorder, k + b + 1)?;
    let restored = want.root("build");
    if let Err(no) = rules::check_earlier_edits(&changes, &old_tree, restored) {
        return Ok(Resumption::NotResumed(no));
    }
    // Changes make would not see by itself.
    let tracking = {
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
            build_top: build_top.as_os_str().as_encoded_bytes(),
            forced_include_in_environment: forced_include_in(values),
        };
        let recorder: &dyn Recording = recorder;
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
        return Ok(Resumption::NotResumed(NoResume::MissingPrerequisites {
            files: rules::short_list(&tracking.missing_prerequisites, 3),
        }));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let floor = rules::resume_floor(
        max_mtime(restored).unwrap_or(Timestamp { sec: 0, nsec: 0 }),
        now,
    );
    // The tree the build resumes on: the earlier tree after buildPhase with the source
    // changes laid over it. The live tree (the new source) is brought to it in place: only
    // build products and what differs are written.
    let (mut tree, report) =
        overlay_state(&old_tree, &new_tree, restored, floor).map_err(ResumeError::Overlay)?;
    // Untracked changes: the compile units that include them (all of them, when that cannot
    // be bounded) become as new as a changed file.
    let touched_units = if tracking.untracked.is_empty() {
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
        .map_err(ResumeError::Restore)?;

    let changed: Vec<String> = report
        .changes
        .iter()
        .filter(|(p, _)| !is_stdenv_file(p))
        .map(|(p, _)| p.to_string())
        .collect();
    let rest = &phases[patch_index + 1..];
    let (adopted, state) = rules::adopted_phases(&base.layers, &found, rest, after_patch, rewrites);
    let decisions = rules::resumed_decisions(
        &adopted,
        &changed,
        &tracking.untracked,
        touched_units,
        tracking.affected_units.is_some(),
    );
    Ok(Resumption::Resumed(Box::new(Resumed {
        next_phase: patch_index + 1 + b,
        state,
        decisions,
        adopted,
    })))
}
