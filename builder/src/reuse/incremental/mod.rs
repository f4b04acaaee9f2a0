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
//!   effect is also in generated files make does not track, see
//!   [`crate::reuse::plan::SOURCE_VARIABLES`]);
//! - when the phases before `buildPhase` do not match, they may rerun over the earlier tree
//!   instead ([`working_copy`]: a version bump, a changed configure flag, a changed build
//!   description under ninja, or under make one that leaves the source's own makefiles as
//!   they were, where [`makefile_changes`] then follows what configure changed in the
//!   makefiles it writes);
//! - a change to a makefile of the source (`Makefile`, `*.mk`, or a template configure did
//!   not make one from) under make never resumes: those phases run on the fresh tree, as a
//!   clean build would; neither does a deleted compile unit (its object, or an archive
//!   member made from it, would outlive it);
//! - unchanged files keep the mtimes the earlier build recorded, changed ones get an mtime
//!   newer than every restored file, so make's timestamp rule sees exactly the change;
//! - a changed file make would not see (a header no dependency record of the earlier build
//!   names, see [`crate::reuse::incremental::dependencies`]) makes the compile units that
//!   include it compile again: their objects are made older than them ([`objects`]);
//! - the large programs, libraries and archives that hold a changed compile unit are left out
//!   of the tree, not imported: the build links them again anyway ([`relinked`]).

pub mod build_environment;
pub mod dependencies;
pub mod libtool;
pub mod makefile_changes;
pub mod ninja;
pub mod objects;
pub mod relinked;
pub mod rules;
pub mod working_copy;

use crate::checkpoint::blobs::{until_stopped, BlobStore};
use crate::checkpoint::parallel::{all_cores, run_parallel};
use crate::checkpoint::restore::write_new_file_under;
use crate::checkpoint::{
    floor_after, max_mtime, overlay_diff, overlay_state, CheckpointError, ContentHash, EntryKind,
    Expect, OverlayChange, RelPath, RewritePair, RootState, State, Timestamp,
};
use crate::reuse::base::{files_holding_pieces, BaseCheckpoint, PathMoves};
use crate::reuse::plan::PhaseDecision;
use crate::reuse::stale::{self, StaleValue};
use crate::shell::declare::Value;
use crate::shell::ShellState;
use build_environment::EnvironmentCheck;
use dependencies::{compile_units, forced_include_in, untracked_changes, AffectedUnits, Trees};
pub use rules::{is_build_description, NoResume};
use rules::{is_stdenv_file, PhaseMatch};
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use thiserror::Error;
use working_copy::{
    keep_source_order, makefile_rules, ran_ninja, read_by_makefiles, revert_rerun_edits,
    without_configure_caches, ConfigureCaches, WorkingCopy,
};

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
    /// Set when phases before `buildPhase` rerun over the earlier tree: the runner settles
    /// the tree after them ([`working_copy::settle`]).
    pub working_copy: Option<WorkingCopy>,
    /// What the state after `buildPhase` must agree with: the runner checks it once
    /// `buildPhase` has run over the resumed tree ([`build_environment`]).
    pub environment: EnvironmentCheck,
    /// The build products left out of the resumed tree (they held a stale value or a piece
    /// of an earlier output path), for the build to remake: should a phase then fail, one may
    /// be something nothing remakes, and the runner starts again from scratch.
    pub left_out: Vec<RelPath>,
}

/// The checkpoint this build is recording, as an incremental restore reads and writes it
/// (the build's recorder implements it; reuse does not depend on the build).
pub trait Recording: Sync {
    /// This build's output paths (and the checkpoint's), as normalisation masks them.
    fn output_paths(&self) -> &[Vec<u8>];
    /// Whether reuse is strict (every key must match exactly).
    fn strict(&self) -> bool;
    /// The earlier build's state after its layer `upto`, rewritten to this build's paths,
    /// with every blob it references brought into this checkpoint; the files of the build
    /// directory at `leave_out` are left out of it, their contents not brought in.
    fn import_base_state(
        &mut self,
        base: &BaseCheckpoint,
        upto: u32,
        rewrites: &[RewritePair],
        leave_out: &[RelPath],
    ) -> Result<State, CheckpointError>;
    /// The content of a blob this checkpoint holds, verified (an attachment's limit).
    fn read_blob(&self, hash: &ContentHash) -> Result<Vec<u8>, CheckpointError>;
    /// The same, of any size, passed to `sink` in chunks until it stops them (then `Ok`,
    /// the content unverified).
    fn stream_blob(
        &self,
        hash: &ContentHash,
        sink: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<(), CheckpointError>;
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
    #[error("after the phases rerun over the earlier tree")]
    Settle(#[source] working_copy::SettleError),
    #[error("cannot write {path} with this build's values")]
    RewriteCache {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Tries to resume after `patchPhase` (at `patch_index` in `phases`) from `base`: the rules
/// first, then the earlier trees imported and compared with the new source, and, when every
/// rule allows it, the live tree brought to the earlier tree after `buildPhase` with the
/// source changes laid over.
#[allow(clippy::too_many_arguments)]
pub fn try_resume(
    base: &BaseCheckpoint,
    moves: &PathMoves,
    phases: &[String],
    patch_index: usize,
    after_patch: &ShellState,
    recorder: &mut dyn Recording,
    build_top: &Path,
    outputs: &[(String, PathBuf)],
) -> Result<Resumption, ResumeError> {
    let rewrites = moves.rewrites.as_slice();
    let base_outputs = &base.masked_outputs;
    let found = match rules::check_phases(
        &base.layers,
        base_outputs,
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
        build_layer,
        ..
    } = found;
    let (rewrites, root_stale) = root_move(&found, base, rewrites, build_top);
    let rewrites = rewrites.as_slice();
    let renamed_root = found.renamed_root.clone();
    let renamed = |tree: &RootState| match &renamed_root {
        Some((old, new)) => working_copy::rename_root(tree, old, new),
        None => tree.clone(),
    };
    let import = |recorder: &mut dyn Recording, layer: usize, leave_out: &[RelPath]| {
        recorder
            .import_base_state(base, layer as u32, rewrites, leave_out)
            .map(|mut state| {
                if let Some(tree) = state.roots.get("build") {
                    let moved = renamed(tree);
                    state.roots.insert("build".to_owned(), moved);
                }
                state
            })
            .map_err(|source| ResumeError::Import {
                layer: layer as u32,
                source,
            })
    };

    // The trees: this build's source after patchPhase, as its layer just recorded it, and
    // the earlier build's after patch and after build, rewritten to this build's paths
    // (their blobs brought into this checkpoint on the way).
    let new_tree = recorder.recorded_state().root("build").clone();
    let old_tree = import(recorder, k, &[])?.root("build").clone();
    let changes = overlay_diff(&old_tree, &new_tree);
    let moved_epoch = rules::moved_source_date_epoch(&base.layers[k].state, after_patch);
    let mut found = found;
    // What no rewrite moves: paths that changed length, and the renderings of a moved
    // SOURCE_DATE_EPOCH. No earlier state can be taken over then (it holds them too): every
    // phase after patchPhase reruns. The ones a compiler may keep in pieces (a renamed
    // output's hash, the earlier date) are looked for in compiler output 8 bytes at a time
    // too (`leave_out_stale`).
    let mut stale_values = moves.stale.clone();
    stale_values.extend(root_stale);
    let mut earlier_dates = Vec::new();
    if let Some(epoch) = moved_epoch {
        earlier_dates = stale::epoch_values(epoch);
        stale_values.extend(earlier_dates.iter().cloned());
    }
    if !stale_values.is_empty() {
        rerun_all(&mut found, || {
            stale::describe_moved_paths(&stale_values)
                .unwrap_or_else(|| "SOURCE_DATE_EPOCH moved".to_owned())
        });
    }
    let source_changes = rules::check_source_changes(&changes);
    // What a resume with no value to move and no build description changed need not
    // restore: the products the change relinks, decided from the earlier checkpoint before
    // the import, which then neither reads nor stages them.
    let plain = found.renamed_root.is_none() && stale_values.is_empty() && source_changes.is_ok();
    let relinked = if plain {
        relinked_products(base, build_layer as u32, &old_tree, &new_tree, &changes)
    } else {
        Vec::new()
    };
    let mut want = import(recorder, build_layer, &relinked)?;
    let read = |h: &ContentHash, sink: &mut dyn FnMut(&[u8]) -> ControlFlow<()>| {
        recorder.stream_blob(h, sink).is_ok()
    };
    // Build products that hold a piece of an earlier output path no rewrite reaches (a
    // compiler stored the path in pieces): left out below, for the build to remake them.
    let mut held_pieces =
        files_holding_pieces(base, build_layer as u32, want.root("build"), outputs, &read)
            .map_err(|source| ResumeError::Import {
                layer: build_layer as u32,
                source,
            })?;
    let ninja = ran_ninja(want.root("build"));
    // The changed build description files the new source has (their order among the
    // source's files is kept, [`working_copy::keep_source_order`]).
    let mut descriptions: Vec<RelPath> = Vec::new();
    match source_changes {
        Ok(()) => {}
        // Under ninja, a changed build description reruns configure over the earlier tree:
        // ninja then rebuilds what the new commands and dependencies say. Under make, so does
        // a change that leaves the source's own makefiles as they were (configure.ac,
        // configure, config.h.in: a version bump; Makefile.am and Makefile.in: a source file
        // added): what configure then writes decides ([`working_copy::settle`]).
        Err(NoResume::BuildDescriptionChanged { files })
            if ninja || rules::rerunnable_under_make(&changes, want.root("build"), &old_tree) =>
        {
            descriptions = changes
                .iter()
                .filter(|(p, c)| {
                    *c != OverlayChange::Removed && rules::is_build_description(p.as_bytes())
                })
                .map(|(p, _)| p.clone())
                .collect();
            rerun_all(&mut found, || {
                format!(
                    "build description files changed ({})",
                    rules::short_list(&files, 3)
                )
            });
        }
        Err(no) => return Ok(Resumption::NotResumed(no)),
    }
    let restored = want.root("build").clone();
    // What the rerun phases, if any, start from: the earlier tree with their own edits
    // undone (they make them again).
    let rerun_base = match found.rerun_from {
        Some(f) => {
            let before = import(recorder, k + f, &[])?.root("build").clone();
            let after = import(recorder, build_layer - 1, &[])?
                .root("build")
                .clone();
            Some(revert_rerun_edits(&restored, &before, &after))
        }
        None => None,
    };
    if let Err(no) = rules::check_earlier_edits(
        &changes,
        &old_tree,
        rerun_base.as_ref().unwrap_or(&restored),
    ) {
        return Ok(Resumption::NotResumed(no));
    }
    if let Err(no) = rules::check_rewrite_order(&changes, &old_tree, &new_tree, &restored) {
        return Ok(Resumption::NotResumed(no));
    }
    if found.rerun_from.is_some() && !ninja {
        if let Err(no) = check_makefiles_read(&found, &restored, recorder) {
            return Ok(Resumption::NotResumed(no));
        }
    }
    let restored = &restored;
    // Changes make would not see by itself.
    let trees = Trees {
        old_source: &old_tree,
        new_source: &new_tree,
        built: restored,
        build_top: build_top.as_os_str().as_encoded_bytes(),
        forced_include_in_environment: forced_include_in(scalar_values(after_patch)),
    };
    let tracking = source_tracking(&changes, &trees, recorder, build_top);
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
    let (expected, report) =
        overlay_state(&old_tree, &new_tree, restored, floor).map_err(ResumeError::Overlay)?;
    let (mut tree, mut working_copy, caches) = match &rerun_base {
        Some(reverted) => {
            let (mut tree, _) = overlay_state(&old_tree, &new_tree, reverted, floor)
                .map_err(ResumeError::Overlay)?;
            let rerun_phases = found.rerun_from.map_or(0, |f| b - f);
            let caches = if rerun_phases > 0 {
                let source_changed = changes.iter().any(|(p, _)| !is_stdenv_file(p));
                let cmake_texts: Vec<Vec<u8>> = new_tree
                    .iter()
                    .filter(|_| !source_changed)
                    .filter(|(p, _)| rules::is_cmake_file(p.as_bytes()))
                    .filter_map(|(_, e)| recorder.read_blob(&e.blob()?).ok())
                    .collect();
                let keep_cmake = rules::keeps_cmake_cache(
                    &found,
                    source_changed,
                    cmake_texts.iter().map(Vec::as_slice),
                );
                without_configure_caches(&mut tree, &new_tree, keep_cmake)
            } else {
                ConfigureCaches::default()
            };
            let mut expected = expected;
            // Under make, what automake's rules make from a changed build description
            // stays as new as it (ninja's regeneration edges make files of the build tree).
            if !descriptions.is_empty() && !ninja {
                let mtime = floor_after(floor);
                let read = |h: &ContentHash| recorder.read_blob(h).ok();
                let top = build_top.as_os_str().as_encoded_bytes();
                let rules = makefile_rules(restored, read, top);
                keep_source_order(&mut tree, &new_tree, &descriptions, &rules, mtime);
                keep_source_order(&mut expected, &new_tree, &descriptions, &rules, mtime);
            }
            // The text the earlier build's make read of each makefile of the source the new
            // source changed: the new one is in `expected` already.
            let source_makefiles = changes
                .iter()
                .filter(|(p, c)| {
                    !ninja && rules::source_makefile_changed(p, *c, restored, &old_tree)
                })
                .map(|(p, _)| {
                    let blob = restored.get(p).and_then(|e| e.blob());
                    (p.clone(), blob.and_then(|h| recorder.read_blob(&h).ok()))
                })
                .collect();
            let copy = WorkingCopy {
                build_phase: patch_index + 1 + b,
                expected,
                source: new_tree.clone(),
                ninja,
                left_out: Vec::new(),
                left_out_entries: RootState::new(),
                moved_texts: Default::default(),
                source_makefiles,
            };
            (tree, Some(copy), caches)
        }
        None => (expected, None, ConfigureCaches::default()),
    };
    // Build products that hold a stale value are left out: the build remakes them. A kept
    // CMake cache gets this build's values instead (keeps_cmake_cache).
    let (left_out, rewritten) = match working_copy.as_mut() {
        Some(copy) if !stale_values.is_empty() => leave_out_stale(
            &mut tree,
            copy,
            &new_tree,
            &stale_values,
            (&moves.renamed_hashes, &earlier_dates),
            (recorder, &caches.kept),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    // This build's own source stays, whatever it holds: a clean build has it too.
    held_pieces.retain(|(p, _)| match (new_tree.get(p), tree.get(p)) {
        (Some(s), Some(t)) => crate::checkpoint::classify(s, t).is_some(),
        _ => true,
    });
    // libtool's records of what is left out go too, so that make remakes them together.
    let records = libtool::records_of(
        restored,
        left_out
            .iter()
            .chain(&held_pieces)
            .map(|(p, _)| p)
            .chain(&relinked),
    );
    for path in held_pieces
        .iter()
        .map(|(p, _)| p)
        .chain(&records)
        .chain(&relinked)
    {
        tree.remove(path);
        if let Some(copy) = working_copy.as_mut() {
            copy.expected.remove(path);
            copy.left_out.push(path.clone());
        }
    }
    // What was left out, as the earlier build had it: a unit whose objects are among them is
    // compiled again when make remakes them (objects::mark_units_changed).
    let left_out_entries: RootState = left_out
        .iter()
        .map(|(p, _)| p)
        .chain(held_pieces.iter().map(|(p, _)| p))
        .chain(&records)
        .filter_map(|p| restored.get(p).map(|e| (p.clone(), e.clone())))
        .collect();
    if let Some(copy) = working_copy.as_mut() {
        copy.left_out.sort();
        copy.left_out.dedup();
        copy.left_out_entries = left_out_entries.clone();
    }
    let mut caches = caches;
    for (p, _) in &left_out {
        if let Some(i) = caches.kept.iter().position(|k| k == p) {
            caches.kept.remove(i);
            caches.left_out.push(p.clone());
        }
    }
    let marked = mark_includers(
        &mut tree,
        &tracking,
        &new_tree,
        &left_out_entries,
        recorder,
        floor_after(floor),
        ninja,
    );
    want.roots.insert("build".to_owned(), tree);
    recorder
        .bring_trees_to(&want, build_top, outputs)
        .map_err(ResumeError::Restore)?;
    for (path, content, mode) in &rewritten {
        write_new_file_under(build_top, path, content, *mode).map_err(|source| {
            ResumeError::RewriteCache {
                path: path.to_string(),
                source,
            }
        })?;
    }

    let changed: Vec<String> = report
        .changes
        .iter()
        .filter(|(p, _)| !is_stdenv_file(p))
        .map(|(p, _)| p.to_string())
        .collect();
    let rest = &phases[patch_index + 1..];
    let (adopted, state) = rules::adopted_phases(&base.layers, &found, rest, after_patch, rewrites);
    let mut decisions = rules::resumed_decisions(
        &adopted,
        &changed,
        &tracking.untracked,
        marked,
        &tracking.affected_units,
    );
    if let Some(build) = decisions.last_mut() {
        build.reason.push_str(&rules::pieces_note(&held_pieces));
        build.reason.push_str(&rules::relinked_note(&relinked));
        build.reason.push_str(&rules::records_note(&records));
    }
    let next_phase = match found.rerun_from {
        Some(f) => {
            let rerun = rules::rerun_decisions(
                &rest[f..b],
                found.first_mismatch.as_deref().unwrap_or_default(),
                &caches,
                &left_out,
            );
            let build = decisions.pop();
            decisions.extend(rerun);
            decisions.extend(build);
            patch_index + 1 + f
        }
        None => patch_index + 1 + b,
    };
    let environment = EnvironmentCheck::new(
        patch_index + 1 + b,
        base.layers[build_layer].state.clone(),
        base_outputs.clone(),
        &found.plan.changed_variables,
        moved_epoch.is_some(),
        found.renamed_root.is_some(),
    );
    let left_out_products = match &working_copy {
        Some(copy) => copy.left_out.clone(),
        None => held_pieces
            .into_iter()
            .map(|(path, _)| path)
            .chain(records)
            .chain(relinked)
            .collect(),
    };
    Ok(Resumption::Resumed(Box::new(Resumed {
        left_out: left_out_products,
        next_phase,
        state,
        decisions,
        adopted,
        working_copy,
        environment,
    })))
}

/// Leaves out of `tree` (the tree the rerun resumes over) every file or symlink that holds a
/// stale value and is not this build's own source (`source`), and puts in the expected tree
/// what it would hold with this build's values (or nothing, for a value without one), so
/// that a rerun phase that writes it again counts as unchanged. So too compiler output that
/// holds 8 bytes of one of `pieces` (renamed outputs' earlier hashes, renderings of the
/// earlier date) that no search for the whole finds (gcc copies a constant string into a
/// buffer in 8-byte immediates): nothing takes its place in the expected tree. Returns
/// (path, what it held) of what it left out, and (path, content, mode) of each of
/// `rewritable` (a kept CMake cache: text that names the values, which a fresh configure
/// would write with this build's) that holds a value whole and was given this build's
/// values instead, for the caller to write once the tree is restored.
#[allow(clippy::type_complexity)]
fn leave_out_stale(
    tree: &mut RootState,
    copy: &mut WorkingCopy,
    source: &RootState,
    values: &[StaleValue],
    pieces: (&[StaleValue], &[StaleValue]),
    (recorder, rewritable): (&dyn Recording, &[RelPath]),
) -> (Vec<(RelPath, String)>, Vec<(RelPath, Vec<u8>, u32)>) {
    let own_source = |p: &RelPath| match (source.get(p), tree.get(p)) {
        (Some(s), Some(t)) => crate::checkpoint::classify(s, t).is_none(),
        _ => false,
    };
    let read = |h: &ContentHash, sink: &mut dyn FnMut(&[u8]) -> ControlFlow<()>| {
        recorder.stream_blob(h, sink).is_ok()
    };
    let held = stale::holding(tree, values, own_source, &read);
    // What holds a value whole is left out already: not read again for its pieces.
    let held_paths: BTreeSet<&RelPath> = held.iter().map(|(p, _)| p).collect();
    let held_in_pieces = stale::windows_holding(
        tree,
        pieces.0,
        pieces.1,
        |p| own_source(p) || held_paths.contains(p),
        &read,
    );
    let mut left_out = Vec::new();
    for (path, value) in held_in_pieces {
        tree.remove(&path);
        copy.expected.remove(&path);
        left_out.push((path, value.what.clone()));
    }
    let mut rewritten = Vec::new();
    for (path, value) in held {
        let entry = tree.remove(&path);
        if let Some(entry) = entry.filter(|_| rewritable.contains(&path)) {
            let content = entry
                .blob()
                .and_then(|h| recorder.read_blob(&h).ok())
                .and_then(|c| stale::substituted(&c, values));
            if let Some(content) = content {
                // The rerun writes it again: the expected entry has this content.
                if let Some(e) = copy.expected.get_mut(&path) {
                    if let EntryKind::File { size, blake3, .. } = &mut e.kind {
                        *size = content.len() as u64;
                        *blake3 = ContentHash::of(&content);
                    }
                }
                rewritten.push((path, content, entry.mode));
                continue;
            }
        }
        let moved = copy.expected.get(&path).and_then(|e| {
            let mut e = e.clone();
            match &mut e.kind {
                EntryKind::File { size, blake3, .. } => {
                    let content = stale::substituted(&recorder.read_blob(blake3).ok()?, values)?;
                    *size = content.len() as u64;
                    *blake3 = ContentHash::of(&content);
                    // A makefile's text is compared after the rerun (settle): kept, since
                    // no blob holds it.
                    if working_copy::is_make_input(path.as_bytes()) {
                        copy.moved_texts.insert(path.clone(), content);
                    }
                }
                EntryKind::Symlink { target } => *target = stale::substituted(target, values)?,
                _ => return None,
            }
            Some(e)
        });
        match moved {
            Some(e) => copy.expected.insert(path.clone(), e),
            None => copy.expected.remove(&path),
        };
        left_out.push((path, value.what.clone()));
    }
    left_out.sort();
    copy.left_out = left_out.iter().map(|(p, _)| p.clone()).collect();
    (left_out, rewritten)
}

/// How the earlier tree moves for a renamed source root (`found.renamed_root`): `rewrites`
/// with the earlier root's absolute path rewritten to the new one when both have the same
/// length, else a stale value for it (stale::holding).
fn root_move(
    found: &PhaseMatch,
    base: &BaseCheckpoint,
    rewrites: &[RewritePair],
    build_top: &Path,
) -> (Vec<RewritePair>, Option<StaleValue>) {
    let mut rewrites = rewrites.to_vec();
    let Some((old, new)) = &found.renamed_root else {
        return (rewrites, None);
    };
    let top = build_top.as_os_str().as_encoded_bytes();
    // The earlier build directory as imported files hold it (rewritten when it could be).
    let imported_top = if rewrites.iter().any(|(o, _)| *o == base.build_top) {
        top
    } else {
        &base.build_top
    };
    let old_abs = [&base.build_top, b"/".as_slice(), old].concat();
    let new_abs = [top, b"/".as_slice(), new].concat();
    if old_abs.len() == new_abs.len() {
        // First: it wins over the build directory's own rewrite.
        rewrites.insert(0, (old_abs, new_abs));
        return (rewrites, None);
    }
    let stale = StaleValue {
        old: [imported_top, b"/".as_slice(), old].concat(),
        new: Some(new_abs),
        what: "source root".into(),
    };
    (rewrites, Some(stale))
}

/// Makes every phase after patchPhase rerun over the earlier tree; `why` names the reason
/// when nothing else did.
fn rerun_all(found: &mut PhaseMatch, why: impl FnOnce() -> String) {
    if found.rerun_from.is_none() {
        found.first_mismatch = Some(why());
    }
    found.rerun_from = Some(0);
}

/// The products of the earlier tree after `buildPhase` (layer `layer` of `base`, after the
/// one before it) that hold a compile unit `changes` change ([`relinked`]), read from the
/// base on every core. A content that cannot be read is kept: its import then finds what is
/// wrong with it.
fn relinked_products(
    base: &BaseCheckpoint,
    layer: u32,
    old_source: &RootState,
    new_source: &RootState,
    changes: &[(RelPath, OverlayChange)],
) -> Vec<RelPath> {
    let names = relinked::changed_unit_names(changes, dependencies::is_compile_unit);
    if names.is_empty() {
        return Vec::new();
    }
    let (Ok(before), Ok(after)) = (
        base.checkpoint.state_after(layer - 1),
        base.checkpoint.state_after(layer),
    ) else {
        return Vec::new();
    };
    let candidates = relinked::candidates(
        after.root("build"),
        before.root("build"),
        old_source,
        new_source,
    );
    let blobs = base.checkpoint.blobs();
    let holds = run_parallel(&candidates, all_cores(), |(_, hash, size)| {
        Ok(holds_changed_unit(blobs, (*hash, *size), &names))
    })
    .unwrap_or_default();
    candidates
        .into_iter()
        .zip(holds)
        .filter(|(_, holds)| *holds)
        .map(|((path, _, _), _)| path)
        .collect()
}

/// Whether content `hash` of `blobs` is a linked product naming one of the units `names`
/// ([`relinked::UnitSearch`]). A patch or delta is judged by the whole content it is made
/// from, the same product as an earlier build linked it, which is read without decoding the
/// record. Reading stops once the first bytes or a match decide.
fn holds_changed_unit(blobs: &BlobStore, content: (ContentHash, u64), names: &[Vec<u8>]) -> bool {
    let Some(mut search) = relinked::UnitSearch::new(names) else {
        return false;
    };
    let Ok((whole, size)) = blobs.whole_base(content) else {
        return false;
    };
    let mut verdict = relinked::Verdict::Undecided;
    // Bounded by the size, not claiming it: a content a delta stands on is then streamed as
    // any other, not decoded into memory first to be kept.
    let mut sink = |chunk: &[u8]| {
        verdict = search.feed(chunk);
        match verdict {
            relinked::Verdict::Undecided => ControlFlow::Continue(()),
            _ => ControlFlow::Break(()),
        }
    };
    let _ = until_stopped(&mut sink, |pass| {
        blobs.stream(&whole, Expect::AtMost(size), pass)
    });
    verdict == relinked::Verdict::Holds
}

/// Under make: refuses a rerun when a makefile of the earlier tree (`restored`) reads a
/// changed variable (make imports the environment).
fn check_makefiles_read(
    found: &PhaseMatch,
    restored: &RootState,
    recorder: &dyn Recording,
) -> Result<(), NoResume> {
    let changed: Vec<String> = found
        .plan
        .changed_variables
        .iter()
        .filter(|v| !crate::reuse::plan::SOURCE_VARIABLES.contains(&v.as_str()))
        .cloned()
        .collect();
    let makefiles: Vec<(RelPath, Vec<u8>)> = restored
        .iter()
        .filter(|(p, _)| working_copy::is_make_input(p.as_bytes()))
        .filter_map(|(p, e)| Some((p.clone(), recorder.read_blob(&e.blob()?).ok()?)))
        .collect();
    let read = read_by_makefiles(&changed, &makefiles);
    if read.is_empty() {
        return Ok(());
    }
    Err(NoResume::NotRerunnable {
        first: found.first_mismatch.clone().unwrap_or_default(),
        why: format!(
            "a makefile of the earlier tree reads {} (make imports the environment)",
            rules::short_list(&read, 3)
        ),
    })
}

/// Every value of `state`'s variables, as bytes (for forced-include flags).
pub(crate) fn scalar_values(state: &ShellState) -> impl Iterator<Item = &[u8]> {
    state.variables.iter().flat_map(|v| match &v.value {
        Value::Scalar(s) => vec![s.as_bytes()],
        Value::Indexed(items) => items.iter().map(|(_, s)| s.as_bytes()).collect(),
        Value::Assoc(items) => items.iter().map(|(_, s)| s.as_bytes()).collect(),
        _ => Vec::new(),
    })
}

/// The source changes make would not see by itself (dependencies::untracked_changes), new
/// files read from the build directory, earlier ones from the checkpoint.
fn source_tracking(
    changes: &[(RelPath, crate::checkpoint::OverlayChange)],
    trees: &Trees<'_>,
    recorder: &dyn Recording,
    build_top: &Path,
) -> dependencies::Tracking {
    let read = |p: &RelPath, h: &ContentHash, new| {
        if new {
            std::fs::read(build_top.join(p.as_path())).ok()
        } else {
            recorder.read_blob(h).ok()
        }
    };
    untracked_changes(changes, trees, &read)
}

/// Untracked changes: the compile units that include them (all of them, when that cannot be
/// bounded) are compiled again: their objects are made older than them, or, without a known
/// object, they are made as new as `changed_mtime`; see [`objects`]. `source` is the new
/// source (what is not in it is a build product), `ninja` whether ninja runs the build.
pub(crate) fn mark_includers(
    tree: &mut RootState,
    tracking: &dependencies::Tracking,
    source: &RootState,
    left_out: &RootState,
    recorder: &dyn Recording,
    changed_mtime: Timestamp,
    ninja: bool,
) -> objects::MarkedUnits {
    if tracking.untracked.is_empty() {
        return objects::MarkedUnits::default();
    }
    let units: Vec<RelPath> = match &tracking.affected_units {
        AffectedUnits::Bounded { units, .. } => units.iter().cloned().collect(),
        AffectedUnits::All(_) => compile_units(tree),
    };
    let linked = if ninja {
        BTreeSet::new()
    } else {
        linked_holding(tree, &units, source, recorder)
    };
    let read = |h: &ContentHash| recorder.read_blob(h).ok();
    objects::mark_units_changed(
        tree,
        &units,
        source,
        left_out,
        &read,
        &linked,
        changed_mtime,
        ninja,
    )
}

/// The programs, shared libraries and archives of `tree` ([`objects::linked_candidates`])
/// whose content names one of `units` as an `STT_FILE` symbol would
/// ([`relinked::ProductSearch`]), read through `recorder`. One whose bytes cannot tell (a
/// program or library with no symbol table, `-s`) or that cannot be read is taken to hold
/// one: made older, it is only remade, as a clean build makes it.
fn linked_holding(
    tree: &RootState,
    units: &[RelPath],
    source: &RootState,
    recorder: &dyn Recording,
) -> BTreeSet<RelPath> {
    let names = relinked::unit_file_names(units);
    let mut holding = BTreeSet::new();
    for (path, hash, _) in objects::linked_candidates(tree, source) {
        let Some(mut search) = relinked::ProductSearch::new(&names) else {
            break;
        };
        // A verdict from the first bytes or a match is final: read no further.
        let read = recorder.stream_blob(&hash, &mut |chunk| {
            search.feed(chunk);
            if search.decided() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        if read.is_err() || search.may_hold() {
            holding.insert(path);
        }
    }
    holding
}
