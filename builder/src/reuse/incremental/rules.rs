//! The rules of the incremental rebuild, pure: whether an earlier build's tree may be resumed
//! over after this build's `patchPhase` ([`check_phases`], [`check_source_changes`],
//! [`check_earlier_edits`], [`check_rewrite_order`]), with a typed reason when not
//! ([`NoResume`]); the mtime changed files get ([`resume_floor`]); and what the log says for
//! each phase ([`resumed_decisions`]).

use crate::checkpoint::{
    classify, EntryKind, OverlayChange, RelPath, RewritePair, RootState, Timestamp,
};
use crate::reuse::incremental::dependencies::AffectedUnits;
use crate::reuse::incremental::objects::MarkedUnits;
use crate::reuse::incremental::working_copy::ConfigureCaches;
use crate::reuse::keys::phase_variables;
use crate::reuse::plan::{self, BaseLayer, PhaseDecision, ReusePlan, SOURCE_VARIABLES};
use crate::shell::declare::Value;
use crate::shell::ShellState;
use std::collections::BTreeSet;
use thiserror::Error;

/// Why an incremental restore was not done: the build runs on the new tree instead. Each is a
/// line in the log.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum NoResume {
    #[error("the checkpoint's phases up to patchPhase differ")]
    PhasesDiffer,
    #[error(
        "the source root changed ({old} → {new}: a new version?), so the earlier tree does not fit"
    )]
    SourceRootChanged { old: String, new: String },
    #[error("the build has no buildPhase")]
    NoBuildPhase,
    /// `first` is the first phase that would not be reused, with the reason.
    #[error("the phases up to buildPhase do not match: {first}")]
    PhasesMismatch { first: String },
    #[error(
        "build description files changed ({}): configure and build run on the new tree",
        .files.join(", ")
    )]
    BuildDescriptionChanged { files: Vec<String> },
    #[error(
        "source files were deleted ({}): their objects could outlive them in the earlier \
         tree, so configure and build run on the new tree",
        .files.join(", ")
    )]
    CompileUnitsDeleted { files: Vec<String> },
    #[error(
        "the earlier build changed {files} after patchPhase and the new source changes it too \
         (laid over, it would lose that edit): configure and build run on the new tree"
    )]
    EditedByEarlierBuild { files: String },
    #[error(
        "the earlier build remade {rewritten}, a file of the source, when {changed} was newer \
         than it; in the new source {changed} changed and is not newer than it, so a clean \
         build would not remake it: configure and build run on the new tree"
    )]
    RewriteOrderFlipped { rewritten: String, changed: String },
    #[error(
        "deleted files are still prerequisites in the earlier build's dependency records \
         ({files}), and nothing makes them: make would stop on them, so configure and build \
         run on the new tree"
    )]
    MissingPrerequisites { files: String },
    /// The phases up to buildPhase differ and cannot be rerun over the earlier tree.
    #[error(
        "the phases up to buildPhase do not match: {first}; they are not rerun over the \
         earlier tree because {why}"
    )]
    NotRerunnable { first: String, why: String },
}

/// The phases of a resume: base layer `patch_layer` is the earlier `patchPhase`'s, and
/// `build_offset` is `buildPhase`'s position among the phases after it.
#[derive(Debug)]
pub struct PhaseMatch {
    pub patch_layer: usize,
    pub build_offset: usize,
    /// The base layer of the earlier `buildPhase`: the tree the build resumes over.
    pub build_layer: usize,
    /// The reuse plan of the phases after `patchPhase` with the source variables left out.
    pub plan: ReusePlan,
    /// Where the phases after `patchPhase` stop matching before `buildPhase`, as a position
    /// among them: those phases rerun over the earlier tree ([`check_rerun`]). `None` when
    /// every phase up to `buildPhase` matches.
    pub rerun_from: Option<usize>,
    /// The first phase that did not match, with the reason (for the log).
    pub first_mismatch: Option<String>,
    /// (earlier, this build's) source root names, when they differ: the earlier tree is
    /// moved to the new name.
    pub renamed_root: Option<(Vec<u8>, Vec<u8>)>,
    /// The changed variables the rerun phases and `buildPhase` key on ([`check_rerun`]
    /// judged them); empty without a rerun.
    pub rerun_variables: BTreeSet<String>,
}

/// Variables that name the package rather than say how it is built: `name`, `pname`,
/// `version`. They differ after a version bump that keeps the source (or in a renamed
/// package), and the phases rerun over the earlier tree see their new values.
pub const IDENTITY_VARIABLES: &[&str] = &["name", "pname", "version"];

/// Variables the configure hooks of nixpkgs read (besides `configurePhase`'s own, see
/// [`phase_variables`]): a change reaches the build only through what configure writes,
/// which the rerun compares file by file.
pub const CONFIGURE_VARIABLES: &[&str] = &[
    "cmakeFlags",
    "cmakeFlagsArray",
    "mesonFlags",
    "mesonFlagsArray",
    "configureScript",
    "configurePlatforms",
    "prefixKey",
    "dontAddPrefix",
    "dontDisableStatic",
    "dontAddDisableDepTrack",
    "dontFixLibtool",
    "dontAddStaticConfigureFlags",
];

/// Whether the phases `rerun` (after `patchPhase`, before `buildPhase`) may rerun over the
/// earlier tree when the variables `changed` (keyed by those phases or by `buildPhase`)
/// differ from the earlier build's: each must name the package
/// ([`IDENTITY_VARIABLES`]) or belong to a rerun phase ([`phase_variables`],
/// [`CONFIGURE_VARIABLES`]). Anything else (flags the compiler wrapper reads from the
/// environment, `buildFlags`, `makeFlags`, `SOURCE_DATE_EPOCH`, `PATH`) may reach the
/// build where no build tool sees it, so the phases run on the new tree instead.
pub fn check_rerun(changed: &BTreeSet<String>, rerun: &[String]) -> Result<(), String> {
    let own: BTreeSet<String> = rerun.iter().flat_map(|p| phase_variables(p)).collect();
    let unsafe_ones: Vec<&str> = changed
        .iter()
        .map(String::as_str)
        .filter(|v| !IDENTITY_VARIABLES.contains(v))
        .filter(|v| !CONFIGURE_VARIABLES.contains(v) || rerun.is_empty())
        .filter(|v| !own.contains(*v))
        .collect();
    if unsafe_ones.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "variable{} {} may reach the build where make or ninja would not see it",
            if unsafe_ones.len() > 1 { "s" } else { "" },
            short_list(&unsafe_ones, 6)
        ))
    }
}

/// Whether a rerun may keep CMake's cache (`CMakeCache.txt`). cmake caches what it found at
/// the first configure (checks, found programs and libraries, flags from the environment)
/// and a rerun over a kept cache does not look again; a fresh configure over the same
/// source, with the same compiler, flags and inputs, finds the same. So it is kept only when
/// the source after `patchPhase` is the earlier one under the same root (`source_changed`,
/// `found.renamed_root`), and every variable that differs for the rerun phases
/// (`found.rerun_variables`) names the package ([`IDENTITY_VARIABLES`]), and no CMake file of
/// the source (`cmake_texts`) reads one from the environment (`$ENV{version}`). Options
/// given on cmake's command line (the output paths) override cached ones. A changed flag,
/// hook or input, or a new source, leaves it out.
pub fn keeps_cmake_cache<'t>(
    found: &PhaseMatch,
    source_changed: bool,
    cmake_texts: impl IntoIterator<Item = &'t [u8]>,
) -> bool {
    if source_changed || found.renamed_root.is_some() {
        return false;
    }
    if !found
        .rerun_variables
        .iter()
        .all(|v| IDENTITY_VARIABLES.contains(&v.as_str()))
    {
        return false;
    }
    let reads: Vec<Vec<u8>> = found
        .rerun_variables
        .iter()
        .map(|v| format!("ENV{{{v}}}").into_bytes())
        .collect();
    !cmake_texts.into_iter().any(|text| {
        reads
            .iter()
            .any(|r| text.windows(r.len()).any(|w| w == r.as_slice()))
    })
}

/// True for CMake's own files of a source: `CMakeLists.txt` and `*.cmake`.
pub fn is_cmake_file(path: &[u8]) -> bool {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    name == b"CMakeLists.txt" || name.ends_with(b".cmake")
}

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

/// True for a makefile or a template of one (`Makefile.in`, `Makefile.am`, `*.mk`): make
/// runs its text, so its change is not a value a rerun configure writes.
pub fn is_makefile_template(path: &[u8]) -> bool {
    super::working_copy::is_makefile(path) || path.ends_with(b".am")
}

/// The makefile configure makes from a template (`D/Makefile.in` or automake's
/// `D/Makefile.am` → `D/Makefile`; `x.mk.in` → `x.mk`), if `path` is one.
fn generated_makefile(path: &RelPath) -> Option<RelPath> {
    let bytes = path.as_bytes();
    let stem = bytes
        .strip_suffix(b".in")
        .or_else(|| bytes.strip_suffix(b".am"))?;
    let name = stem.rsplit(|&b| b == b'/').next().unwrap_or(stem);
    if !is_makefile_template(name) {
        return None;
    }
    RelPath::new(stem.to_vec()).ok()
}

/// Under make, whether a build description change (`changes` holds one) can rerun the
/// phases from configure over the earlier tree: no compile unit was deleted (its object
/// would outlive it), and every makefile or makefile template that changed is a template
/// from which the earlier build's configure made a makefile (`Makefile.in`, `Makefile.am`,
/// with `Makefile` in `built`, the earlier tree, and not in `old_source`): the rerun writes
/// that makefile again, and what changed in it is followed then
/// ([`super::working_copy::settle`]). So is a makefile of the source itself (`Makefile`,
/// `*.mk`) whose text changed ([`source_makefile_changed`]); one added or removed is not, nor
/// a template from which configure made no makefile: make would not rebuild what a changed
/// rule compiles differently.
pub fn rerunnable_under_make(
    changes: &[(RelPath, OverlayChange)],
    built: &RootState,
    old_source: &RootState,
) -> bool {
    !changes.iter().any(|(p, c)| {
        let made_by_configure = || {
            generated_makefile(p)
                .is_some_and(|m| built.contains_key(&m) && !old_source.contains_key(&m))
        };
        (is_makefile_template(p.as_bytes())
            && !(*c != OverlayChange::Removed && made_by_configure())
            && !source_makefile_changed(p, *c, built, old_source))
            || (*c == OverlayChange::Removed && super::dependencies::is_compile_unit(p.as_bytes()))
    })
}

/// True for a makefile of the source itself (`Makefile`, `*.mk`, not a template) that the
/// earlier build's make read (`built`, the earlier tree, holds it) and whose text the new
/// source changed: its earlier and new texts are compared after the rerun phases.
pub fn source_makefile_changed(
    path: &RelPath,
    change: OverlayChange,
    built: &RootState,
    old_source: &RootState,
) -> bool {
    let bytes = path.as_bytes();
    change == OverlayChange::Content
        && super::working_copy::is_makefile(bytes)
        && !super::working_copy::is_template(bytes)
        && old_source.contains_key(path)
        && built.get(path).is_some_and(|e| e.blob().is_some())
}

/// The stdenv's own files in the build directory: they change every time and are laid over
/// like the rest, but are neither source changes worth reporting nor source files.
const STDENV_FILES: &[&str] = &["env-vars", ".attrs.json", ".attrs.sh"];

pub fn is_stdenv_file(p: &RelPath) -> bool {
    STDENV_FILES.iter().any(|f| p.as_bytes() == f.as_bytes())
}

/// The first `max` items, comma-separated, with `…` when there are more.
pub fn short_list<T: std::fmt::Display>(items: &[T], max: usize) -> String {
    let mut l: Vec<String> = items.iter().take(max).map(|p| p.to_string()).collect();
    if items.len() > max {
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

/// Whether the earlier build ran the same phases up to `patchPhase` (at `patch_index` in
/// `phases`) on a source root of the same name, and would be reused from there up to
/// `buildPhase` if what unpack and patch were told to do were left out of the keys (its effect
/// is in the tree, which is compared by content).
#[allow(clippy::too_many_arguments)]
pub fn check_phases(
    base: &[BaseLayer],
    base_outputs: &[Vec<u8>],
    phases: &[String],
    patch_index: usize,
    after_patch: &ShellState,
    outputs: &[Vec<u8>],
    rewrites: &[RewritePair],
    strict: bool,
) -> Result<PhaseMatch, NoResume> {
    let k = patch_index + 1;
    let same_prefix = base.len() > k
        && base[1..=k]
            .iter()
            .map(|l| &l.name)
            .eq(phases[..=patch_index].iter());
    if !same_prefix {
        return Err(NoResume::PhasesDiffer);
    }
    let (old_root, new_root) = (
        scalar(&base[k].state, "sourceRoot"),
        scalar(after_patch, "sourceRoot"),
    );
    // A renamed source root (a new tarball's `hello-2.12/`) is laid over under its new name:
    // the earlier tree moves, and every phase after patchPhase reruns over it.
    let renamed_root = match (&old_root, &new_root) {
        (Some(o), Some(n)) if o != n => {
            let plain = |r: &[u8]| {
                !r.is_empty() && !r.contains(&b'/') && r != b"." && r != b".." && !r.contains(&0)
            };
            if !plain(o) || !plain(n) {
                return Err(NoResume::SourceRootChanged {
                    old: String::from_utf8_lossy(o).into_owned(),
                    new: String::from_utf8_lossy(n).into_owned(),
                });
            }
            Some((o.clone(), n.clone()))
        }
        _ if old_root != new_root => {
            return Err(NoResume::SourceRootChanged {
                old: String::from_utf8_lossy(&old_root.unwrap_or_default()).into_owned(),
                new: String::from_utf8_lossy(&new_root.unwrap_or_default()).into_owned(),
            });
        }
        _ => None,
    };
    let rest = &phases[patch_index + 1..];
    let b = rest
        .iter()
        .position(|p| p == "buildPhase")
        .ok_or(NoResume::NoBuildPhase)?;
    let ignored: BTreeSet<String> = SOURCE_VARIABLES
        .iter()
        .map(|s| s.to_string())
        .chain(phase_variables("unpackPhase"))
        .chain(phase_variables("patchPhase"))
        .chain(["patches".to_owned()])
        .collect();
    // Layers an earlier incremental build took over match too: a chain of incremental builds
    // adopts configure's state as the first one did instead of running configure again.
    let plan = plan::plan_ignoring(
        &base[k..],
        base_outputs,
        after_patch,
        outputs,
        rewrites,
        rest,
        strict,
        &ignored,
        true,
    );
    if plan.depth > b && renamed_root.is_none() {
        return Ok(PhaseMatch {
            patch_layer: k,
            build_offset: b,
            build_layer: k + b + 1,
            plan,
            rerun_from: None,
            first_mismatch: None,
            renamed_root: None,
            rerun_variables: BTreeSet::new(),
        });
    }
    let first = match &renamed_root {
        Some((o, n)) => format!(
            "the source root changed ({} → {}: a new version?)",
            String::from_utf8_lossy(o),
            String::from_utf8_lossy(n)
        ),
        None => plan
            .decisions
            .iter()
            .find(|d| !d.reused)
            .map(|d| format!("{} {}", d.phase, d.reason))
            .unwrap_or_default(),
    };
    // Rerun the phases from the first that differs over the earlier tree, when it has a
    // finished buildPhase and what changed is safe to rerun over (check_rerun).
    let not_rerunnable = |why: String| NoResume::NotRerunnable {
        first: first.clone(),
        why,
    };
    let Some(build_layer) = base
        .iter()
        .skip(k + 1)
        .position(|l| l.name == "buildPhase")
        .map(|i| k + 1 + i)
    else {
        return Err(NoResume::PhasesMismatch { first });
    };
    let base_masks = crate::reuse::keys::output_masks(base_outputs);
    let masks = crate::reuse::keys::output_masks(outputs);
    let (old_functions, new_functions) = (
        crate::reuse::keys::normalise(base[k].state.functions.as_bytes(), &base_masks),
        crate::reuse::keys::normalise(after_patch.functions.as_bytes(), &masks),
    );
    if old_functions != new_functions {
        return Err(not_rerunnable("shell functions changed".into()));
    }
    let later = crate::reuse::keys::later_phase_variables(rest, b);
    // A moved SOURCE_DATE_EPOCH is handled: what renders the earlier value is left out of
    // the tree (crate::reuse::stale).
    let epoch_moved = moved_source_date_epoch(&base[k].state, after_patch).is_some();
    let keyed: BTreeSet<String> = plan
        .changed_variables
        .iter()
        .filter(|v| !ignored.contains(*v) && !later.contains(*v))
        .filter(|v| !crate::reuse::keys::unkeyed(v, strict))
        .filter(|v| !(epoch_moved && *v == "SOURCE_DATE_EPOCH"))
        // The working directory and sourceRoot name the renamed root, which is moved.
        .filter(|v| {
            renamed_root.is_none() || !["sourceRoot", "PWD", "OLDPWD"].contains(&v.as_str())
        })
        .cloned()
        .collect();
    if strict {
        return Err(not_rerunnable("checkpointStrict is set".into()));
    }
    let rerun_from = if renamed_root.is_some() {
        0
    } else {
        plan.depth
    };
    check_rerun(&keyed, &rest[rerun_from..b]).map_err(not_rerunnable)?;
    // A changed variable no makefile reads still reaches the build tool through the code
    // buildPhase runs when that expands it.
    let expanded = super::build_environment::expanded_in_build_code(
        after_patch,
        &keyed,
        epoch_moved,
        renamed_root.is_some(),
    );
    if !expanded.is_empty() {
        return Err(not_rerunnable(format!(
            "the code buildPhase runs expands variable{} {}, where make or ninja would not \
             see the new value",
            if expanded.len() > 1 { "s" } else { "" },
            short_list(&expanded, 6)
        )));
    }
    Ok(PhaseMatch {
        patch_layer: k,
        build_offset: b,
        build_layer,
        rerun_from: Some(rerun_from),
        plan,
        first_mismatch: Some(first),
        renamed_root,
        rerun_variables: keyed,
    })
}

/// The earlier build's `SOURCE_DATE_EPOCH` (after `patchPhase`, `before`) when this build's
/// (`after`) differs and both are whole numbers of seconds.
pub fn moved_source_date_epoch(before: &ShellState, after: &ShellState) -> Option<i64> {
    let value = |s: &ShellState| -> Option<i64> {
        String::from_utf8(scalar(s, "SOURCE_DATE_EPOCH")?)
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let (old, new) = (value(before)?, value(after)?);
    (old != new).then_some(old)
}

/// The source changes (earlier source → this source, both after `patchPhase`) that rule a
/// resume out: a build description changed (configure and build must see it), or a compile
/// unit was deleted (its object, or an archive member made from it, would outlive it; `ar r`
/// keeps members, only a clean build drops them).
pub fn check_source_changes(changes: &[(RelPath, OverlayChange)]) -> Result<(), NoResume> {
    let descriptions: Vec<String> = changes
        .iter()
        .filter(|(p, _)| is_build_description(p.as_bytes()))
        .map(|(p, _)| p.to_string())
        .collect();
    if !descriptions.is_empty() {
        return Err(NoResume::BuildDescriptionChanged {
            files: descriptions,
        });
    }
    let deleted: Vec<String> = changes
        .iter()
        .filter(|(p, c)| {
            *c == OverlayChange::Removed && super::dependencies::is_compile_unit(p.as_bytes())
        })
        .map(|(p, _)| p.to_string())
        .collect();
    if !deleted.is_empty() {
        return Err(NoResume::CompileUnitsDeleted { files: deleted });
    }
    Ok(())
}

/// Refuses a resume when the earlier build itself changed, after `patchPhase`, a path the new
/// source changes too (`substituteInPlace` in `preConfigure`, a file generated over a source
/// file, a source file deleted): laying this build's version over the earlier tree would drop
/// that edit, which a clean build would make again.
pub fn check_earlier_edits(
    changes: &[(RelPath, OverlayChange)],
    old_source: &RootState,
    built: &RootState,
) -> Result<(), NoResume> {
    let edited = edited_by_earlier_build(changes, old_source, built);
    if edited.is_empty() {
        Ok(())
    } else {
        Err(NoResume::EditedByEarlierBuild {
            files: short_list(&edited, 3),
        })
    }
}

/// Refuses a resume when the earlier build rewrote a file of the source that the new source
/// leaves as it was (with a new mtime, as make remakes a file, not in place with its mtime
/// kept, as `patchShebangs` does, and no earlier than a changed file's mtime in its tree),
/// while that changed file was newer than it in the earlier source and is not newer than it
/// in the new one. A clean build of the new
/// source would not remake it from that file (make goes by mtimes), but over the earlier tree
/// it holds what the earlier build made, and the changed file, made newer than every restored
/// file, would have make remake it anyway: in an edit-build loop that undoes an edit of GNU
/// diffutils' `src/diff.c`, the page `man/diff.1` that `help2man` remade after the edit
/// (`diff.1: diff.c diff.x`, stamping the current month), where a clean build installs the
/// shipped one.
pub fn check_rewrite_order(
    changes: &[(RelPath, OverlayChange)],
    old_source: &RootState,
    new_source: &RootState,
    built: &RootState,
) -> Result<(), NoResume> {
    // Each changed file's mtime in the earlier source, in the new one, and in the earlier
    // tree after buildPhase (none when the build removed it).
    let changed: Vec<(&RelPath, Timestamp, Timestamp, Option<Timestamp>)> = changes
        .iter()
        .filter(|(p, _)| !is_stdenv_file(p))
        .filter_map(|(p, _)| {
            let (old, new) = (old_source.get(p)?.mtime, new_source.get(p)?.mtime);
            Some((p, old, new, built.get(p).map(|e| e.mtime)))
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let changed_paths: BTreeSet<&RelPath> = changes.iter().map(|(p, _)| p).collect();
    for (path, old) in old_source {
        if changed_paths.contains(path) || !matches!(old.kind, EntryKind::File { .. }) {
            continue;
        }
        let (Some(new), Some(now)) = (new_source.get(path), built.get(path)) else {
            continue;
        };
        // Rewritten, and not in place with its mtime kept (as `patchShebangs` and
        // `substituteInPlace` keep it): what make rewrites gets a new one.
        if classify(old, now) != Some(OverlayChange::Content) || now.mtime == old.mtime {
            continue;
        }
        // Newer than it in the earlier source, not in the new one, and it was written no
        // earlier than the changed file's time in the earlier tree, as make writes what it
        // remakes from a newer file (a file configure wrote over a shipped one before an
        // earlier build's change is not: zlib's `Makefile`).
        if let Some((c, ..)) = changed.iter().find(|(_, was, is, then)| {
            *was > old.mtime && *is <= new.mtime && then.is_none_or(|t| now.mtime >= t)
        }) {
            return Err(NoResume::RewriteOrderFlipped {
                rewritten: path.to_string(),
                changed: c.to_string(),
            });
        }
    }
    Ok(())
}

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

/// The floor for changed files' mtimes: max(newest restored + 1 ns, now), minus the one
/// second [`crate::checkpoint::overlay_state`] adds. Strictly newer than every restored file,
/// and not in the future (make warns about clock skew and rebuilds again).
pub fn resume_floor(newest_restored: Timestamp, now: std::time::Duration) -> Timestamp {
    let floor = std::cmp::max(
        (newest_restored.sec - 1, newest_restored.nsec + 1),
        (now.as_secs() as i64 - 1, now.subsec_nanos()),
    );
    if floor.1 >= 1_000_000_000 {
        Timestamp {
            sec: floor.0 + 1,
            nsec: floor.1 - 1_000_000_000,
        }
    } else {
        Timestamp {
            sec: floor.0,
            nsec: floor.1,
        }
    }
}

/// The phases after `patchPhase` up to `buildPhase` (`rest[..build_offset]`), taken over from
/// the earlier build: (phase, state before, state after) for each, each state the earlier one
/// moved to this build's paths with this build's values of the variables that changed, and
/// the state `buildPhase` starts from.
pub fn adopted_phases(
    base: &[BaseLayer],
    found: &PhaseMatch,
    rest: &[String],
    after_patch: &ShellState,
    rewrites: &[RewritePair],
) -> (Vec<(String, ShellState, ShellState)>, ShellState) {
    let mut adopted = Vec::new();
    let mut before = after_patch.clone();
    let count = found.rerun_from.unwrap_or(found.build_offset);
    for (i, phase) in rest[..count].iter().enumerate() {
        let after = plan::with_variables_from(
            &plan::rewrite_state(&base[found.patch_layer + i + 1].state, rewrites),
            &found.plan.changed_variables,
            after_patch,
        );
        adopted.push((phase.clone(), before.clone(), after.clone()));
        before = after;
    }
    (adopted, before)
}

/// What the log says of the phases `rerun` over the earlier tree: the first phase that did
/// not match (`first`, with its reason) and the configure caches left out or kept.
pub fn rerun_decisions(
    rerun: &[String],
    first: &str,
    caches: &ConfigureCaches,
    left_out: &[(RelPath, String)],
) -> Vec<PhaseDecision> {
    let mut caches_note = String::new();
    if !caches.left_out.is_empty() {
        caches_note = format!(
            "; left out so that configure starts afresh: {}",
            short_list(&caches.left_out, 3)
        );
    }
    if !caches.kept.is_empty() {
        caches_note.push_str(&format!(
            "; kept, since only the package's name or version changed and the source did not: \
             {}",
            short_list(&caches.kept, 3)
        ));
    }
    let mut caches = caches_note;
    if !left_out.is_empty() {
        let (what, paths) = what_and_paths(left_out);
        caches.push_str(&format!(
            "; left out because they hold the earlier build's {what} (the build remakes them): {} file(s), {paths}",
            left_out.len(),
        ));
    }
    rerun
        .iter()
        .map(|phase| PhaseDecision {
            phase: phase.clone(),
            reused: false,
            reason: format!(
                "ran over the earlier build's tree (a working copy; its own earlier edits undone): {first}{caches}"
            ),
        })
        .collect()
}

/// What the log adds to `buildPhase`'s decision for the build products left out because
/// they hold a piece of an earlier output path (`held`: path, what it is a piece of); empty
/// when there are none.
pub fn pieces_note(held: &[(RelPath, String)]) -> String {
    if held.is_empty() {
        return String::new();
    }
    let (what, paths) = what_and_paths(held);
    format!(
        "; left out because they hold {what} that no rewrite can update (a compiler stored the \
         path in pieces; the build remakes them): {} file(s), {paths}",
        held.len(),
    )
}

/// For the log, of files left out with what each held: the kinds held (each once, sorted,
/// joined with commas) and a short list of the paths.
fn what_and_paths(left_out: &[(RelPath, String)]) -> (String, String) {
    let mut what: Vec<&str> = left_out.iter().map(|(_, w)| w.as_str()).collect();
    what.sort_unstable();
    what.dedup();
    let paths: Vec<&RelPath> = left_out.iter().map(|(p, _)| p).collect();
    (what.join(", "), short_list(&paths, 5))
}

/// What the log adds to `buildPhase`'s decision for the programs, libraries and archives
/// left out because they hold a changed compile unit ([`super::relinked`]); empty when there
/// are none.
pub fn relinked_note(relinked: &[RelPath]) -> String {
    if relinked.is_empty() {
        return String::new();
    }
    format!(
        "; left out because they hold a changed compile unit (the build links them again): \
         {} file(s), {}",
        relinked.len(),
        short_list(relinked, 5)
    )
}

/// What the log adds to `buildPhase`'s decision for libtool's records left out with the
/// objects and libraries they name ([`super::libtool`]); empty when there are none.
pub fn records_note(records: &[RelPath]) -> String {
    if records.is_empty() {
        return String::new();
    }
    format!(
        "; left out with them, libtool's records of those objects and libraries (make remakes \
         them together): {}",
        short_list(records, 5)
    )
}

/// The compile units compiled again after an untracked change, in words: `units` of them,
/// which are those that include it, or all of them and why.
pub fn which_units(units: usize, affected: &AffectedUnits) -> String {
    match affected {
        AffectedUnits::Bounded { opaque, .. } => match opaque.as_slice() {
            [] => format!("the {units} compile unit(s) that include it"),
            [first, rest @ ..] => format!(
                "the {units} compile unit(s) that include it or may ({first}{} could name any \
                 file)",
                if rest.is_empty() {
                    String::new()
                } else {
                    format!(" and {} more such file(s)", rest.len())
                }
            ),
        },
        AffectedUnits::All(why) => format!("all {units} compile units ({why})"),
    }
}

/// What the log says of each adopted phase and of `buildPhase`: how many source paths
/// changed (`changed`, stdenv files left out) and which compile units count as changed
/// because make would not see a change (`untracked`, `marked`: how they were marked,
/// `affected`: which units, or why all of them).
pub fn resumed_decisions(
    adopted: &[(String, ShellState, ShellState)],
    changed: &[String],
    untracked: &[RelPath],
    marked: MarkedUnits,
    affected: &AffectedUnits,
) -> Vec<PhaseDecision> {
    let mut decisions: Vec<PhaseDecision> = adopted
        .iter()
        .map(|(phase, _, _)| PhaseDecision {
            phase: phase.clone(),
            reused: true,
            reason: format!(
                "restored (incremental): {} source file(s) changed since the checkpoint",
                changed.len()
            ),
        })
        .collect();
    let untracked_note = if untracked.is_empty() {
        String::new()
    } else {
        format!(
            "; no dependency record of the earlier build names {} (dependency tracking off?), so {} are compiled again ({})",
            short_list(untracked, 3),
            which_units(marked.units, affected),
            marked.describe()
        )
    };
    decisions.push(PhaseDecision {
        phase: "buildPhase".into(),
        reused: false,
        reason: if changed.is_empty() {
            format!("ran incrementally over the earlier build's tree: no source path changed{untracked_note}")
        } else {
            format!(
                "ran incrementally over the earlier build's tree: {} changed path(s) ({}) are newer than every restored file{untracked_note}",
                changed.len(),
                short_list(changed, 5)
            )
        },
    });
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::overlay_diff;
    use crate::checkpoint::testutil::tree_of as tree;
    use crate::reuse::incremental::dependencies::{ForcedInclude, Opaque};
    use crate::reuse::keys::{later_phase_variables, layer_inputs};
    use crate::shell::declare::Attributes;
    use crate::shell::{ByteString, Variable};
    use std::collections::HashSet;

    #[test]
    fn under_make_changed_makefiles_are_followed_unless_added_removed_or_unused_templates() {
        let old = tree(&[
            ("p/configure.ac", "1"),
            ("p/Makefile.am", "a"),
            ("p/Makefile.in", "a"),
            ("p/lib/GNUmakefile", "x"),
            ("p/rules.mk", "r"),
            ("p/x.c", "c"),
        ]);
        let mut built = old.clone();
        built.extend(tree(&[("p/Makefile", "made"), ("p/x.o", "o")]));
        let changed = |edits: &[(&str, &str)], dropped: &[&str]| {
            let mut new = old.clone();
            new.extend(tree(edits));
            for d in dropped {
                new.remove(&RelPath::new(d.as_bytes().to_vec()).unwrap());
            }
            rerunnable_under_make(&overlay_diff(&old, &new), &built, &old)
        };
        assert!(changed(&[("p/configure.ac", "2")], &[]));
        assert!(changed(
            &[("p/Makefile.am", "b"), ("p/Makefile.in", "b")],
            &[]
        ));
        // The source's own makefiles whose text changed are compared after the rerun; one
        // added or removed, and templates configure made nothing from, are not.
        assert!(changed(&[("p/lib/GNUmakefile", "y")], &[]));
        assert!(changed(&[("p/rules.mk", "s")], &[]));
        assert!(!changed(&[("p/new.mk", "n")], &[]));
        assert!(!changed(&[], &["p/rules.mk"]));
        assert!(!changed(&[("p/lib/Makefile.in", "new")], &[]));
        assert!(!changed(&[("p/configure.ac", "2")], &["p/x.c"]));
        assert!(!changed(&[], &["p/Makefile.in"]));
    }

    fn state(vars: &[(&str, &str)]) -> ShellState {
        let mut variables: Vec<Variable> = vars
            .iter()
            .map(|(n, v)| Variable {
                name: (*n).into(),
                attributes: Attributes::default(),
                value: Value::Scalar(ByteString::from(*v)),
            })
            .collect();
        variables.sort_by(|a, b| a.name.cmp(&b.name));
        ShellState {
            variables,
            ..ShellState::default()
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const OUT: &[u8] = b"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x";

    /// An earlier build of `phases` whose states are all `after` (setup's too).
    fn base(phases: &[String], after: &ShellState) -> Vec<BaseLayer> {
        let out = vec![OUT.to_vec()];
        let mut layers = vec![BaseLayer {
            name: "setup".into(),
            state: after.clone(),
            inputs: layer_inputs("setup", None, &out, false, &HashSet::new()),
            taken_over: false,
        }];
        for (i, p) in phases.iter().enumerate() {
            layers.push(BaseLayer {
                name: p.clone(),
                state: after.clone(),
                inputs: layer_inputs(
                    p,
                    Some(after),
                    &out,
                    false,
                    &later_phase_variables(phases, i),
                ),
                taken_over: false,
            });
        }
        layers
    }

    fn check(
        base_phases: &[&str],
        phases: &[&str],
        old: &ShellState,
        new: &ShellState,
    ) -> Result<PhaseMatch, NoResume> {
        let layers = base(&names(base_phases), old);
        let phases = names(phases);
        let patch = phases.iter().position(|p| p == "patchPhase").unwrap();
        check_phases(
            &layers,
            &[OUT.to_vec()],
            &phases,
            patch,
            new,
            &[OUT.to_vec()],
            &[],
            false,
        )
    }

    const PHASES: &[&str] = &[
        "unpackPhase",
        "patchPhase",
        "configurePhase",
        "buildPhase",
        "installPhase",
    ];

    fn vars(src: &str, root: &str, flags: &str) -> ShellState {
        state(&[
            ("out", std::str::from_utf8(OUT).unwrap()),
            ("src", src),
            ("sourceRoot", root),
            ("configureFlags", flags),
        ])
    }

    #[test]
    fn a_changed_source_alone_resumes_at_build() {
        let found = check(
            PHASES,
            PHASES,
            &vars("/s/a", "p-1", ""),
            &vars("/s/b", "p-1", ""),
        )
        .unwrap();
        assert_eq!((found.patch_layer, found.build_offset), (2, 1));
    }

    #[test]
    fn each_phase_rule_names_its_reason() {
        let old = vars("/s/a", "p-1", "");
        // A renamed source root reruns everything after patchPhase over the moved tree.
        let found = check(PHASES, PHASES, &old, &vars("/s/b", "p-2", "")).unwrap();
        assert_eq!(found.rerun_from, Some(0));
        assert_eq!(found.renamed_root, Some((b"p-1".to_vec(), b"p-2".to_vec())));
        // One that is not a plain directory name is not moved.
        assert_eq!(
            check(PHASES, PHASES, &old, &vars("/s/b", "p/2", "")).unwrap_err(),
            NoResume::SourceRootChanged {
                old: "p-1".into(),
                new: "p/2".into()
            }
        );
        let without_patch = ["unpackPhase", "configurePhase", "buildPhase"];
        assert_eq!(
            check(&without_patch, PHASES, &old, &old).unwrap_err(),
            NoResume::PhasesDiffer
        );
        let no_build = ["unpackPhase", "patchPhase", "installPhase"];
        assert_eq!(
            check(&no_build, &no_build, &old, &old).unwrap_err(),
            NoResume::NoBuildPhase
        );
        // A changed configure flag reruns configure over the earlier tree.
        let found = check(PHASES, PHASES, &old, &vars("/s/b", "p-1", "--enable-x")).unwrap();
        assert_eq!(found.rerun_from, Some(0));
        assert!(found.first_mismatch.unwrap().starts_with("configurePhase"));
        // A flag the compiler reads from the environment does not.
        let with = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("out", std::str::from_utf8(OUT).unwrap()),
                ("src", "/s/a"),
                ("sourceRoot", "p-1"),
            ];
            vars.extend_from_slice(extra);
            state(&vars)
        };
        let cflags = with(&[("NIX_CFLAGS_COMPILE", "-O2")]);
        match check(PHASES, PHASES, &with(&[]), &cflags).unwrap_err() {
            NoResume::NotRerunnable { first, why } => {
                assert!(first.starts_with("configurePhase"), "{first}");
                assert!(why.contains("NIX_CFLAGS_COMPILE"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // A new version: `name` and `version` are the package's, not the build's.
        let bumped = with(&[("name", "p-2"), ("version", "2")]);
        let found = check(
            PHASES,
            PHASES,
            &with(&[("name", "p-1"), ("version", "1")]),
            &bumped,
        )
        .unwrap();
        assert_eq!(found.rerun_from, Some(0));
        // Only the package's identity differs: CMake's cache may stay, unless the source
        // changed or a CMake file reads the changed value from the environment.
        assert_eq!(
            found.rerun_variables.iter().collect::<Vec<_>>(),
            ["name", "version"]
        );
        let plain: &[u8] = b"project(p VERSION 2)";
        assert!(keeps_cmake_cache(&found, false, [plain]));
        assert!(!keeps_cmake_cache(&found, true, [plain]));
        let reads: &[u8] = b"set(V $ENV{version})";
        assert!(!keeps_cmake_cache(&found, false, [plain, reads]));
        // A changed configure flag leaves it out (a flag dropped from the command line
        // would stay cached).
        let flagged = check(
            PHASES,
            PHASES,
            &with(&[("configureFlags", "--a")]),
            &with(&[("configureFlags", "--b")]),
        )
        .unwrap();
        assert!(!keeps_cmake_cache(&flagged, false, [plain]));
        assert!(is_cmake_file(b"build/cmake/CMakeLists.txt"));
        assert!(is_cmake_file(b"cmake/FindZ.cmake"));
        assert!(!is_cmake_file(b"CMakeLists.txt.in"));
    }

    #[test]
    fn rerun_rules() {
        let configure = names(&["configurePhase"]);
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert!(check_rerun(
            &set(&["name", "version", "configureFlags", "cmakeFlags"]),
            &configure
        )
        .is_ok());
        assert!(check_rerun(&set(&["preConfigure"]), &configure).is_ok());
        for v in [
            "buildFlags",
            "makeFlags",
            "NIX_CFLAGS_COMPILE",
            "SOURCE_DATE_EPOCH",
            "PATH",
        ] {
            let why = check_rerun(&set(&[v]), &configure).unwrap_err();
            assert!(why.contains(v), "{why}");
        }
        // Configure's variables are not safe when configure does not rerun.
        assert!(check_rerun(&set(&["configureFlags"]), &[]).is_err());
    }

    #[test]
    fn source_changes_that_rule_a_resume_out() {
        let old = tree(&[("p/a.c", "a"), ("p/Makefile.in", "m"), ("p/b.c", "b")]);
        let edit = tree(&[("p/a.c", "a2"), ("p/Makefile.in", "m"), ("p/b.c", "b")]);
        assert_eq!(check_source_changes(&overlay_diff(&old, &edit)), Ok(()));
        let described = tree(&[("p/a.c", "a"), ("p/Makefile.in", "m2"), ("p/b.c", "b")]);
        assert_eq!(
            check_source_changes(&overlay_diff(&old, &described)),
            Err(NoResume::BuildDescriptionChanged {
                files: vec!["p/Makefile.in".into()]
            })
        );
        let deleted = tree(&[("p/a.c", "a"), ("p/Makefile.in", "m")]);
        let err = check_source_changes(&overlay_diff(&old, &deleted)).unwrap_err();
        assert_eq!(
            err,
            NoResume::CompileUnitsDeleted {
                files: vec!["p/b.c".into()]
            }
        );
        assert!(
            err.to_string()
                .starts_with("source files were deleted (p/b.c)"),
            "{err}"
        );
    }

    #[test]
    fn the_floor_is_after_the_newest_restored_file_and_not_in_the_future() {
        let now = std::time::Duration::new(1_000, 5);
        // Restored files older than now: now (minus the second overlay_state adds).
        assert_eq!(
            resume_floor(Timestamp { sec: 10, nsec: 0 }, now),
            Timestamp { sec: 999, nsec: 5 }
        );
        // A restored file from the future: one nanosecond after it, carried into seconds.
        assert_eq!(
            resume_floor(
                Timestamp {
                    sec: 5_000,
                    nsec: 999_999_999
                },
                now
            ),
            Timestamp {
                sec: 5_000,
                nsec: 0
            }
        );
    }

    #[test]
    fn decisions_name_the_changes_and_the_untracked_units() {
        let s = ShellState::default();
        let adopted = vec![("configurePhase".to_owned(), s.clone(), s)];
        let changed: Vec<String> = (0..7).map(|i| format!("f{i}.c")).collect();
        let none = AffectedUnits::default();
        let d = resumed_decisions(&adopted, &changed, &[], MarkedUnits::default(), &none);
        assert_eq!(d.len(), 2);
        assert!(d[0].reused && d[0].reason.contains("7 source file(s) changed"));
        assert!(!d[1].reused);
        assert!(
            d[1].reason.contains("(f0.c, f1.c, f2.c, f3.c, f4.c, …)"),
            "{}",
            d[1].reason
        );
        let h = RelPath::from_escaped("p/x.h").unwrap();
        let marked = MarkedUnits {
            units: 12,
            aged_objects: 11,
            aged_linked: 0,
            touched_units: 1,
            remade_units: 0,
        };
        let why = ForcedInclude::InMakefile(RelPath::from_escaped("p/Makefile").unwrap());
        let all = AffectedUnits::All(why);
        let d = resumed_decisions(
            &adopted,
            &changed[..1],
            std::slice::from_ref(&h),
            marked,
            &all,
        );
        assert!(
            d[1].reason.contains("names p/x.h")
                && d[1].reason.contains(
                    "all 12 compile units (p/Makefile passes a forced include (`-include`) that \
                     no directive shows)"
                )
                && d[1]
                    .reason
                    .contains("11 object(s) made older than their sources, 1 unit(s)"),
            "{}",
            d[1].reason
        );
        let opaque = |p: &str| Opaque::ComputedInclude(RelPath::from_escaped(p).unwrap());
        let some = AffectedUnits::Bounded {
            units: BTreeSet::new(),
            opaque: vec![opaque("p/lib/iconv_open.c"), opaque("p/lib/other.h")],
        };
        let d = resumed_decisions(&adopted, &changed[..1], &[h], marked, &some);
        assert!(
            d[1].reason.contains(
                "the 12 compile unit(s) that include it or may (a computed include (`#include \
                 MACRO`) in p/lib/iconv_open.c and 1 more such file(s) could name any file)"
            ),
            "{}",
            d[1].reason
        );
    }

    #[test]
    fn a_source_file_remade_after_a_change_the_new_source_undoes_refuses_the_resume() {
        let at = |t: &mut RootState, p: &str, sec: i64| {
            t.get_mut(&RelPath::from_escaped(p).unwrap()).unwrap().mtime =
                Timestamp { sec, nsec: 0 };
        };
        // diffutils: the earlier build's postPatch edited src/diff.c (newer than the shipped
        // page), so make remade man/diff.1 with help2man; the new source has diff.c as
        // shipped, older than the page, and edits diff.h.
        let mut old = tree(&[
            ("d/src/diff.c", "edited"),
            ("d/src/diff.h", "h"),
            ("d/man/diff.1", "shipped page"),
        ]);
        at(&mut old, "d/src/diff.c", 500);
        at(&mut old, "d/src/diff.h", 100);
        at(&mut old, "d/man/diff.1", 200);
        let mut new = tree(&[
            ("d/src/diff.c", "shipped"),
            ("d/src/diff.h", "h edited"),
            ("d/man/diff.1", "shipped page"),
        ]);
        at(&mut new, "d/src/diff.c", 100);
        at(&mut new, "d/src/diff.h", 600);
        at(&mut new, "d/man/diff.1", 200);
        let mut built = old.clone();
        built.extend(tree(&[
            ("d/man/diff.1", "remade page"),
            ("d/src/diff.o", "o"),
        ]));
        // Remade by make after the edit.
        at(&mut built, "d/man/diff.1", 600);
        let changes = overlay_diff(&old, &new);
        assert_eq!(
            check_rewrite_order(&changes, &old, &new, &built),
            Err(NoResume::RewriteOrderFlipped {
                rewritten: "d/man/diff.1".into(),
                changed: "d/src/diff.c".into(),
            })
        );
        let page = RelPath::from_escaped("d/man/diff.1").unwrap();
        // The page as shipped after the earlier build: nothing was remade.
        let mut kept = built.clone();
        kept.insert(page.clone(), old[&page].clone());
        assert_eq!(check_rewrite_order(&changes, &old, &new, &kept), Ok(()));
        // Written before the changed file's time in the earlier tree (zlib's configure
        // writes its Makefile over the shipped one; the change came after): no make rule.
        let mut configured = built.clone();
        configured.get_mut(&page).unwrap().mtime = Timestamp { sec: 300, nsec: 0 };
        configured
            .get_mut(&RelPath::from_escaped("d/src/diff.c").unwrap())
            .unwrap()
            .mtime = Timestamp { sec: 500, nsec: 0 };
        assert_eq!(
            check_rewrite_order(&changes, &old, &new, &configured),
            Ok(())
        );
        // Rewritten in place with its mtime kept (patchShebangs on a script): no make rule.
        let mut patched = built.clone();
        patched.get_mut(&page).unwrap().mtime = old[&page].mtime;
        assert_eq!(check_rewrite_order(&changes, &old, &new, &patched), Ok(()));
        // diff.c still newer than the page in the new source (an edit, not an undo): a
        // clean build remakes the page too, and so does the resumed one.
        at(&mut new, "d/src/diff.c", 700);
        let changes = overlay_diff(&old, &new);
        assert_eq!(check_rewrite_order(&changes, &old, &new, &built), Ok(()));
        // diff.c older than the page in the earlier source too: the change did not remake it.
        at(&mut new, "d/src/diff.c", 100);
        at(&mut old, "d/src/diff.c", 150);
        let changes = overlay_diff(&old, &new);
        assert_eq!(check_rewrite_order(&changes, &old, &new, &built), Ok(()));
    }

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
