//! Reruns over the earlier tree (issue 14): when the phases between `patchPhase` and
//! `buildPhase` must rerun (a version bump, a changed configure flag, a changed build
//! description under ninja), they rerun over the earlier build's tree after `buildPhase`, as
//! a developer reruns configure in a working copy, and the build tool then rebuilds only what
//! their new output changed.
//!
//! Pure but for [`settle`], which moves mtimes in the live tree. The rules (`docs/keys.md`):
//! - the earlier build's edits to files that were there before the rerun phases (a
//!   `substituteInPlace` in `preConfigure`) are undone first: the rerun phases edit the files
//!   they saw ([`revert_rerun_edits`]); configure caches that would stand in for a fresh
//!   configure (`CMakeCache.txt`, meson's `coredata.dat`) are left out
//!   ([`without_configure_caches`]);
//! - after the rerun phases, a file they rewrote with the content it had in the earlier tree
//!   gets its recorded mtime back (design §3), so make and ninja see only real changes;
//! - under make, a changed build description file keeps the order of the new source's mtimes
//!   with the files the makefiles' rules make from it ([`keep_source_order`]), so the
//!   generated files of a release tarball stay newer than its `configure.ac`;
//! - under make, a changed variable a makefile reads ([`read_by_makefiles`]: make imports
//!   the environment) rules the rerun out, and so does `libtool` or a makefile that the rerun
//!   wrote with new content ([`is_make_input`]) beyond values whose readers
//!   [`crate::reuse::incremental::makefile_changes`] can name: make does not track its own
//!   rules' text, so objects compiled under the old one would be kept; the products of rules
//!   that read a changed value, in the changed makefile or in any other of the tree (make
//!   reads included makefiles as one text), are left out for make to remake. ninja tracks
//!   command lines itself;
//! - a changed header make would not see makes the compile units that include it compile
//!   again, as after a source change ([`crate::reuse::incremental::objects`]).

use crate::checkpoint::{
    floor_after, max_mtime, overlay_diff, CheckpointError, ContentHash, EntryKind, OverlayChange,
    RelPath, RootState, Timestamp,
};
use crate::reuse::incremental::dependencies::{
    forced_include_in, join_normalized, untracked_changes, AffectedUnits, Trees,
};
use crate::reuse::incremental::makefile_changes;
use crate::reuse::incremental::mark_includers;
use crate::reuse::incremental::objects::MarkedUnits;
use crate::reuse::incremental::rules::{is_stdenv_file, resume_floor, short_list, which_units};
use crate::reuse::incremental::Recording;
use crate::shell::ShellState;
use memchr::memmem;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A rerun over the earlier tree in progress: what the runner needs once the rerun phases
/// are done.
#[derive(Debug, Clone)]
pub struct WorkingCopy {
    /// Index (in the phase list) of `buildPhase`: the rerun phases are the ones before it.
    pub build_phase: usize,
    /// The earlier tree after `buildPhase` with the source changes laid over, as an
    /// incremental build without a rerun would resume on: the contents and mtimes a rerun
    /// phase's output is compared with.
    pub expected: RootState,
    /// The new source after `patchPhase`: what is not in it is a build product.
    pub source: RootState,
    /// Whether the earlier build ran ninja (it tracks command lines; make does not).
    pub ninja: bool,
    /// The build products left out because they held a stale value
    /// ([`crate::reuse::stale`]): the build must remake them.
    pub left_out: Vec<RelPath>,
    /// The earlier build's entries of the paths in `left_out` (and of the products holding
    /// pieces of an earlier output path, and their libtool records), for telling which
    /// compile units make compiles again to remake them.
    pub left_out_entries: RootState,
    /// The texts `expected` gives the makefiles left out for a stale value (the earlier
    /// text with this build's values), which no blob holds.
    pub moved_texts: BTreeMap<RelPath, Vec<u8>>,
    /// The makefiles of the source itself (`Makefile`, `*.mk`) whose text the new source
    /// changed, with the text the earlier build's make read (None: it could not be read,
    /// and the change is not followed): `expected` holds the new one already, so what
    /// changed is followed from this one.
    pub source_makefiles: BTreeMap<RelPath, Option<Vec<u8>>>,
}

/// The rerun phases wrote something make would build on without seeing it.
#[derive(Debug, Error)]
pub enum SettleError {
    #[error(
        "what make reads changed in {files} beyond what can be followed ({why}), and make \
         does not rebuild what a changed makefile compiles differently"
    )]
    MakeInputsChanged { files: String, why: String },
    #[error("cannot move the unchanged files' mtimes back")]
    Restore(#[source] CheckpointError),
}

/// What [`settle`] did, for the buildPhase line of the log.
#[derive(Debug, Default)]
pub struct Settled {
    /// Files rewritten with their earlier content, whose recorded mtime came back.
    pub mtimes_restored: usize,
    /// Paths the rerun phases changed (content, kind or presence), stdenv files left out.
    pub changed: Vec<RelPath>,
    /// Changed files make would not see, and how the units that include them were marked.
    pub untracked: Vec<RelPath>,
    pub marked: MarkedUnits,
    /// Which compile units they reach, or why all.
    pub affected: AffectedUnits,
    /// Makefiles rewritten with new values or explicit rules only, the variables that
    /// changed in them and how many rules.
    pub makefiles: Vec<(RelPath, Vec<String>, usize)>,
    /// Build products left out because a rule that makes them reads a changed value.
    pub left_out: Vec<RelPath>,
}

impl Settled {
    /// The sentence the buildPhase decision gets.
    pub fn note(&self) -> String {
        let mut text = format!(
            "; the phases rerun over it changed {} path(s){} and rewrote {} unchanged file(s), \
             which kept their earlier mtimes",
            self.changed.len(),
            if self.changed.is_empty() {
                String::new()
            } else {
                format!(" ({})", short_list(&self.changed, 5))
            },
            self.mtimes_restored
        );
        if !self.makefiles.is_empty() {
            let mut variables: Vec<&String> =
                self.makefiles.iter().flat_map(|(_, v, _)| v).collect();
            variables.sort();
            variables.dedup();
            let rules: usize = self.makefiles.iter().map(|(_, _, r)| r).sum();
            let files: Vec<&RelPath> = self.makefiles.iter().map(|(p, _, _)| p).collect();
            let what = match (variables.is_empty(), rules) {
                (true, 0) => "comments or blank lines".to_owned(),
                (false, 0) => format!("the values of {}", short_list(&variables, 5)),
                (true, r) => format!("{r} explicit rule(s)"),
                (false, r) => {
                    format!(
                        "the values of {} and {r} explicit rule(s)",
                        short_list(&variables, 5)
                    )
                }
            };
            text.push_str(&format!(
                "; the changed makefiles ({}) differ only in {what}, and {} build \
                 product(s) whose rules read them or changed were left out for make to remake{}",
                short_list(&files, 3),
                self.left_out.len(),
                if self.left_out.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", short_list(&self.left_out, 5))
                }
            ));
        }
        if !self.untracked.is_empty() {
            text.push_str(&format!(
                "; no dependency record names {}, so {} are compiled again ({})",
                short_list(&self.untracked, 3),
                which_units(self.marked.units, &self.affected),
                self.marked.describe()
            ));
        }
        text
    }
}

/// The build products (in `tree`, not this build's own source) among `targets`, as the
/// makefile at `path` names them.
fn products_named(
    path: &RelPath,
    targets: &BTreeSet<Vec<u8>>,
    tree: &RootState,
    source: &RootState,
    build_top: &[u8],
) -> Vec<RelPath> {
    // make resolves a target against the directory it runs in, which need not be the
    // makefile's (CMake runs `make -f CMakeFiles/x.dir/build.make` from the build
    // directory): every directory from the makefile's up is tried.
    let mut dirs = vec![path.parent().unwrap_or_default()];
    while let Some(up) = dirs.last().and_then(RelPath::parent) {
        dirs.push(up);
    }
    let mut products = Vec::new();
    for target in targets {
        for dir in &dirs {
            let Some(p) = resolved(dir, target, build_top) else {
                continue;
            };
            let Some(entry) = tree.get(&p) else { continue };
            let own_source = source
                .get(&p)
                .is_some_and(|s| crate::checkpoint::classify(s, entry).is_none());
            if !own_source && !entry.is_dir() {
                products.push(p);
            }
        }
    }
    products
}

/// The most changed variables (with those that read them) followed into other makefiles:
/// each makefile's text is searched once per round for all of them, and an earlier text
/// from a checkpoint could name millions. A real change names a few dozen.
const MAX_FOLLOWED_VALUES: usize = 4096;

/// A path a makefile in `dir` names (relative to it, or absolute under `build_top`) as a
/// path of the build directory; None outside it.
fn resolved(dir: &RelPath, word: &[u8], build_top: &[u8]) -> Option<RelPath> {
    let joined = match word.strip_prefix(build_top) {
        Some(rest) if rest.first() == Some(&b'/') => join_normalized(&RelPath::root(), rest)?,
        _ if word.first() == Some(&b'/') => return None,
        _ => join_normalized(dir, word)?,
    };
    RelPath::new(joined).ok()
}

/// True for the files whose text make runs: makefiles and libtool's script.
pub fn is_make_input(path: &[u8]) -> bool {
    is_makefile(path) || file_name(path) == b"libtool"
}

/// True for makefiles (`Makefile*`, `GNUmakefile`, `makefile`, `*.mk`, `*.make`): the make
/// inputs whose changes [`makefile_changes::analyse`] can follow. A `*.cmake` file is CMake's
/// language, not make's, whatever its name (CMake's make generator writes
/// `CMakeFiles/Makefile.cmake`, the list of files the Makefile was generated from, which
/// cmake reads to decide whether to generate again, and make never reads).
pub fn is_makefile(path: &[u8]) -> bool {
    let name = file_name(path);
    if name.ends_with(b".cmake") {
        return false;
    }
    name.starts_with(b"Makefile")
        || name == b"GNUmakefile"
        || name == b"makefile"
        || name.ends_with(b".mk")
        || name.ends_with(b".make")
}

/// True for a template of a makefile (`Makefile.in`, `Makefile.am`, `x.mk.in`):
/// configure's input, not make's.
pub fn is_template(path: &[u8]) -> bool {
    path.ends_with(b".in") || path.ends_with(b".am")
}

fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// The explicit rules of the makefiles of `tree` (read with `read`), their targets and
/// prerequisites resolved to paths of the build directory (`build_top` is its absolute
/// path): what [`keep_source_order`] follows.
pub fn makefile_rules(
    tree: &RootState,
    read: impl Fn(&ContentHash) -> Option<Vec<u8>>,
    build_top: &[u8],
) -> Vec<(Vec<RelPath>, Vec<RelPath>)> {
    let mut rules = Vec::new();
    for (p, e) in tree.iter() {
        if !is_makefile(p.as_bytes()) {
            continue;
        }
        let Some(text) = e.blob().and_then(|h| read(&h)) else {
            continue;
        };
        let dir = p.parent().unwrap_or_default();
        let resolve = |words: Vec<Vec<u8>>| -> Vec<RelPath> {
            words
                .iter()
                .filter_map(|w| resolved(&dir, w, build_top))
                .collect()
        };
        for (targets, prerequisites) in makefile_changes::explicit_rules(&text) {
            rules.push((resolve(targets), resolve(prerequisites)));
        }
    }
    rules
}

/// Keeps the order of the new source's mtimes where a make rule compares them: a file of
/// `source` (the new source) still there unchanged in `tree`, that a rule (`rules`) makes
/// from a changed build description file (`descriptions`) or from a file so moved, and that
/// is at least as new there as that prerequisite, gets `mtime` (at least its own), the mtime
/// the overlay gives changed files. A tarball's generated files (`configure`, `Makefile.in`,
/// `aclocal.m4`, `config.h.in`) are newer than `configure.ac`; laid over, a changed
/// `configure.ac` would otherwise be newer than the unchanged ones, and automake's rules
/// would run aclocal, automake and autoheader where a clean build does not. Returns how many
/// entries it moved.
pub fn keep_source_order(
    tree: &mut RootState,
    source: &RootState,
    descriptions: &[RelPath],
    rules: &[(Vec<RelPath>, Vec<RelPath>)],
    mtime: Timestamp,
) -> usize {
    let mut by_prerequisite: BTreeMap<&RelPath, Vec<usize>> = BTreeMap::new();
    for (i, (_, prerequisites)) in rules.iter().enumerate() {
        for p in prerequisites {
            by_prerequisite.entry(p).or_default().push(i);
        }
    }
    let mut newer: BTreeSet<RelPath> = descriptions.iter().cloned().collect();
    let mut pending: Vec<RelPath> = descriptions.to_vec();
    let mut moved = 0;
    while let Some(p) = pending.pop() {
        let Some(since) = source.get(&p).map(|e| e.mtime) else {
            continue;
        };
        for &r in by_prerequisite.get(&p).into_iter().flatten() {
            for t in &rules[r].0 {
                if newer.contains(t) {
                    continue;
                }
                let Some(e) = source.get(t).filter(|e| !e.is_dir() && e.mtime >= since) else {
                    continue;
                };
                let Some(x) = tree.get_mut(t) else { continue };
                if crate::checkpoint::classify(e, x).is_some() {
                    continue;
                }
                x.mtime = mtime.max(e.mtime);
                moved += 1;
                newer.insert(t.clone());
                pending.push(t.clone());
            }
        }
    }
    moved
}

/// True when the tree holds ninja's log: the earlier build ran ninja.
pub fn ran_ninja(tree: &RootState) -> bool {
    tree.keys()
        .any(|p| p.file_name() == Some(b".ninja_log".as_slice()))
}

/// `built` (the earlier tree after `buildPhase`) with every path that the rerun phases
/// changed undone: `before` is the earlier tree before the first rerun phase, `after` the
/// one after the last (before `buildPhase`). Paths they added stay (build products).
pub fn revert_rerun_edits(built: &RootState, before: &RootState, after: &RootState) -> RootState {
    let mut out = built.clone();
    for (p, change) in overlay_diff(before, after) {
        if change == OverlayChange::Added || p.is_root() || is_stdenv_file(&p) {
            continue;
        }
        let Some(entry) = before.get(&p) else {
            continue;
        };
        if out.get(&p).is_some_and(|e| e.is_dir() != entry.is_dir()) || !entry.is_dir() {
            out.retain(|k, _| !k.starts_with(&p) || k == &p);
        }
        // Parents the rerun phases removed come back from `before`.
        let mut cur = RelPath::root();
        for comp in p.parent().unwrap_or_default().components() {
            let Ok(next) = cur.join(comp) else { break };
            cur = next;
            if !out.get(&cur).is_some_and(|e| e.is_dir()) {
                if let Some(d) = before.get(&cur) {
                    out.retain(|k, _| !k.starts_with(&cur));
                    out.insert(cur.clone(), d.clone());
                }
            }
        }
        let mut entry = entry.clone();
        if let EntryKind::File { size, blake3, .. } = entry.kind {
            entry.kind = EntryKind::File {
                size,
                blake3,
                hardlink: None,
            };
        }
        out.insert(p, entry);
    }
    out
}

/// `tree` with the directory `old` (a source root, one component) renamed to `new`: every
/// path under it moved, entries kept as they are.
pub fn rename_root(tree: &RootState, old: &[u8], new: &[u8]) -> RootState {
    tree.iter()
        .map(|(p, e)| {
            let b = p.as_bytes();
            let moved = if b == old {
                RelPath::new(new.to_vec()).ok()
            } else if b.len() > old.len() && b.starts_with(old) && b[old.len()] == b'/' {
                RelPath::new([new, &b[old.len()..]].concat()).ok()
            } else {
                None
            };
            (moved.unwrap_or_else(|| p.clone()), e.clone())
        })
        .collect()
}

/// The configure caches of the earlier tree a rerun found: left out, or kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigureCaches {
    pub left_out: Vec<RelPath>,
    pub kept: Vec<RelPath>,
}

/// `tree` without the configure caches a rerun must not start from (`CMakeCache.txt`,
/// meson's `meson-private/coredata.dat`) among the paths `source` (this build's source after
/// `patchPhase`) does not have; `CMakeCache.txt` stays when `keep_cmake` (see
/// [`crate::reuse::incremental::rules::keeps_cmake_cache`]).
pub fn without_configure_caches(
    tree: &mut RootState,
    source: &RootState,
    keep_cmake: bool,
) -> ConfigureCaches {
    let mut caches = ConfigureCaches::default();
    for p in tree.keys().filter(|p| !source.contains_key(*p)) {
        let b = p.as_bytes();
        if p.file_name() == Some(b"CMakeCache.txt".as_slice()) {
            if keep_cmake {
                caches.kept.push(p.clone());
            } else {
                caches.left_out.push(p.clone());
            }
        } else if b == b"meson-private/coredata.dat" || b.ends_with(b"/meson-private/coredata.dat")
        {
            caches.left_out.push(p.clone());
        }
    }
    for p in &caches.left_out {
        tree.remove(p);
    }
    caches
}

/// The names among `changed` that a make input of `makefiles` (path, text) may read from
/// the environment, which make and the scripts it runs inherit: a makefile that refers to
/// one as `$(name)` or `${name}`, or libtool's script when it expands one (`$name`,
/// `${name}`) and never assigns it. libtool's own variables (`name`, `version`, set from
/// the file it works on before each use) are its own, not the derivation's.
pub fn read_by_makefiles<'v>(
    changed: impl IntoIterator<Item = &'v String>,
    makefiles: &[(RelPath, Vec<u8>)],
) -> Vec<String> {
    changed
        .into_iter()
        .filter(|v| {
            makefiles.iter().any(|(p, text)| {
                if file_name(p.as_bytes()) == b"libtool" {
                    shell_expands(text, v.as_bytes()) && !shell_assigns(text, v.as_bytes())
                } else {
                    memmem::find(text, format!("$({v})").as_bytes()).is_some()
                        || memmem::find(text, format!("${{{v}}}").as_bytes()).is_some()
                }
            })
        })
        .cloned()
        .collect()
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether shell `text` expands variable `name`: `${name…` or `$name` not followed by more
/// of a name.
fn shell_expands(text: &[u8], name: &[u8]) -> bool {
    let braced = [b"${".as_slice(), name].concat();
    let bare = [b"$".as_slice(), name].concat();
    let ends = |at: usize| text.get(at).is_none_or(|&b| !is_name_byte(b));
    [braced, bare]
        .iter()
        .any(|needle| memmem::find_iter(text, needle).any(|i| ends(i + needle.len())))
}

/// Whether shell `text` assigns variable `name` (`name=` where a word starts).
fn shell_assigns(text: &[u8], name: &[u8]) -> bool {
    let assignment = [name, b"=".as_slice()].concat();
    memmem::find_iter(text, &assignment)
        .any(|i| i == 0 || !is_name_byte(text[i - 1]) && text[i - 1] != b'$')
}

/// After the rerun phases (the live tree as the last layer recorded it): moves back the mtime
/// of every file they rewrote with its earlier content, refuses under make when a makefile
/// changed, and makes the compile units that include a changed header make would not see
/// newer than every restored file. `state` is the shell state after the last rerun phase
/// (for forced includes in the build's flags).
pub fn settle(
    copy: &WorkingCopy,
    recorder: &mut dyn Recording,
    state: &ShellState,
    build_top: &Path,
    outputs: &[(String, PathBuf)],
) -> Result<Settled, SettleError> {
    let mut want = recorder.recorded_state().clone();
    let live = want.root("build").clone();
    let changes: Vec<(RelPath, OverlayChange)> = overlay_diff(&copy.expected, &live)
        .into_iter()
        .filter(|(p, _)| !is_stdenv_file(p))
        .collect();
    let mut settled = Settled {
        changed: changes
            .iter()
            .filter(|(p, _)| {
                !live
                    .get(p)
                    .or(copy.expected.get(p))
                    .is_some_and(|e| e.is_dir())
            })
            .map(|(p, _)| p.clone())
            .collect(),
        ..Settled::default()
    };
    let mut stale_products = BTreeSet::new();
    if !copy.ninja {
        let exported: BTreeSet<String> = state
            .variables
            .iter()
            .filter(|v| v.attributes.exported)
            .map(|v| v.name.clone())
            .collect();
        let top = build_top.as_os_str().as_encoded_bytes();
        let mut refused: Vec<(RelPath, String)> = Vec::new();
        // The variables whose values changed, and those that read them.
        let mut reaching: BTreeSet<String> = BTreeSet::new();
        // What the rerun phases rewrote, and the source's own makefiles the new source changed.
        let makefiles: BTreeSet<&RelPath> = settled
            .changed
            .iter()
            .filter(|p| is_make_input(p.as_bytes()))
            .chain(copy.source_makefiles.keys())
            .collect();
        for p in makefiles {
            let texts = match (copy.expected.get(p), live.get(p)) {
                (Some(old), Some(new)) if is_makefile(p.as_bytes()) && new.blob().is_some() => {
                    let earlier = match (copy.source_makefiles.get(p), copy.moved_texts.get(p)) {
                        (Some(text), _) => text.clone(),
                        (None, Some(text)) => Some(text.clone()),
                        (None, None) => old.blob().and_then(|h| recorder.read_blob(&h).ok()),
                    };
                    earlier.zip(std::fs::read(build_top.join(p.as_path())).ok())
                }
                _ => None,
            };
            let Some((old_text, new_text)) = texts else {
                let why = if !is_makefile(p.as_bytes()) {
                    "libtool's script changed"
                } else if !copy.expected.contains_key(p) {
                    "a makefile is new"
                } else {
                    "a makefile is gone or could not be read"
                };
                refused.push((p.clone(), format!("{p}: {why}")));
                continue;
            };
            match makefile_changes::analyse(&old_text, &new_text, &exported) {
                Ok(changes) => {
                    stale_products.extend(products_named(
                        p,
                        &changes.targets,
                        &live,
                        &copy.source,
                        top,
                    ));
                    reaching.extend(changes.reaching);
                    settled
                        .makefiles
                        .push((p.clone(), changes.variables, changes.rules));
                }
                Err(e) => refused.push((p.clone(), format!("{p}: {e}"))),
            }
        }
        // make reads a makefile and the ones it includes as one text: a value that changed
        // in one is read by the rules of the others (a `version.mk` configure writes, read
        // by the Makefile that includes it). Which makefile includes which is not worked
        // out: every makefile of the tree is followed with the changed values, and the
        // variables that read them, until no new variable reads one.
        // The text of every makefile make reads, read once for all the rounds.
        let mut texts: Vec<(&RelPath, Vec<u8>)> = Vec::new();
        if refused.is_empty() && !reaching.is_empty() {
            for (p, e) in live.iter() {
                if !is_makefile(p.as_bytes()) || is_template(p.as_bytes()) || e.is_dir() {
                    continue;
                }
                // A symlink is read as make reads it, through its target; one that does not
                // lead to a regular file (dangling, a fifo) is no makefile make can read.
                let full = build_top.join(p.as_path());
                let regular = std::fs::metadata(&full).is_ok_and(|m| m.is_file());
                match regular.then(|| std::fs::read(&full)) {
                    Some(Ok(text)) => texts.push((p, text)),
                    None if e.blob().is_none() => {}
                    _ => refused.push((p.clone(), format!("{p}: a makefile could not be read"))),
                }
            }
        }
        let mut followed_with = 0;
        while refused.is_empty() && reaching.len() > followed_with {
            if reaching.len() > MAX_FOLLOWED_VALUES {
                refused.push((
                    settled
                        .makefiles
                        .first()
                        .map(|(p, _, _)| p.clone())
                        .unwrap_or_default(),
                    format!(
                        "more than {MAX_FOLLOWED_VALUES} changed values and variables reading \
                         them to follow"
                    ),
                ));
                break;
            }
            followed_with = reaching.len();
            let names = reaching.clone();
            for (p, text) in &texts {
                match makefile_changes::readers(text, &names, &exported) {
                    Ok(read) => {
                        stale_products.extend(products_named(
                            p,
                            &read.targets,
                            &live,
                            &copy.source,
                            top,
                        ));
                        reaching.extend(read.reaching);
                    }
                    Err(e) => refused.push((
                        (*p).clone(),
                        format!("{p}: {e} (a value changed in another makefile)"),
                    )),
                }
            }
        }
        if !refused.is_empty() {
            let files: Vec<&RelPath> = refused.iter().map(|(p, _)| p).collect();
            return Err(SettleError::MakeInputsChanged {
                files: short_list(&files, 3),
                why: refused[0].1.clone(),
            });
        }
    }
    let mut tree = live.clone();
    for (p, e) in tree.iter_mut() {
        let Some(x) = copy.expected.get(p) else {
            continue;
        };
        let same_file = matches!(
            (&e.kind, &x.kind),
            (EntryKind::File { blake3: a, .. }, EntryKind::File { blake3: b, .. }) if a == b
        ) && e.mode == x.mode
            && e.xattrs == x.xattrs;
        if same_file && e.mtime != x.mtime {
            e.mtime = x.mtime;
            settled.mtimes_restored += 1;
        }
    }
    // Changed files make would not see: the units that include them become newer than
    // everything restored.
    let values = crate::reuse::incremental::scalar_values(state);
    let trees = Trees {
        old_source: &copy.expected,
        new_source: &live,
        built: &copy.expected,
        build_top: build_top.as_os_str().as_encoded_bytes(),
        forced_include_in_environment: forced_include_in(values),
    };
    let read = |p: &RelPath, h: &ContentHash, new| {
        if new {
            std::fs::read(build_top.join(p.as_path())).ok()
        } else {
            recorder.read_blob(h).ok()
        }
    };
    // A product left out for make to remake (a header a rule writes from `$(VERSION)`) will
    // change as much as one the rerun phases changed: make may not see it either.
    let mut changes = changes;
    for p in &stale_products {
        if !changes.iter().any(|(c, _)| c == p) {
            changes.push((p.clone(), OverlayChange::Content));
        }
    }
    let tracking = untracked_changes(&changes, &trees, &read);
    if !tracking.untracked.is_empty() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let newest = max_mtime(&tree).unwrap_or(Timestamp { sec: 0, nsec: 0 });
        let changed_mtime = floor_after(resume_floor(newest, now));
        settled.marked = mark_includers(
            &mut tree,
            &tracking,
            &copy.source,
            &copy.left_out_entries,
            recorder,
            changed_mtime,
            copy.ninja,
        );
        settled.untracked = tracking.untracked;
        settled.affected = tracking.affected_units;
    }
    for p in &stale_products {
        tree.remove(p);
    }
    settled.left_out = stale_products.into_iter().collect();
    want.roots.insert("build".to_owned(), tree);
    recorder
        .bring_trees_to(&want, build_top, outputs)
        .map_err(SettleError::Restore)?;
    Ok(settled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::testutil::tree_of as tree;

    fn rp(p: &str) -> RelPath {
        RelPath::new(p.as_bytes().to_vec()).unwrap()
    }

    fn paths(t: &RootState) -> Vec<String> {
        t.keys().map(|p| p.to_string()).collect()
    }

    #[test]
    fn edits_of_the_rerun_phases_are_undone_and_their_products_kept() {
        let before = tree(&[
            ("src/a.c", "a"),
            ("Makefile.in", "@prefix@"),
            ("gone.txt", "g"),
        ]);
        let after = tree(&[
            ("src/a.c", "a"),
            ("Makefile.in", "/nix/store/x"),
            ("Makefile", "generated"),
        ]);
        let built = tree(&[
            ("src/a.c", "a"),
            ("src/a.o", "object"),
            ("Makefile.in", "/nix/store/x"),
            ("Makefile", "generated"),
        ]);
        let out = revert_rerun_edits(&built, &before, &after);
        assert_eq!(out.get(&rp("Makefile.in")), before.get(&rp("Makefile.in")));
        assert_eq!(out.get(&rp("gone.txt")), before.get(&rp("gone.txt")));
        assert!(out.contains_key(&rp("Makefile")));
        assert!(out.contains_key(&rp("src/a.o")));
    }

    #[test]
    fn a_renamed_root_moves_what_is_below_it() {
        let t = tree(&[
            ("hello-2.10/src/a.c", "a"),
            ("hello-2.100/x", "x"),
            ("env-vars", "e"),
        ]);
        let moved = rename_root(&t, b"hello-2.10", b"hello-2.12");
        assert_eq!(
            paths(&moved),
            [
                "",
                "env-vars",
                "hello-2.100",
                "hello-2.100/x",
                "hello-2.12",
                "hello-2.12/src",
                "hello-2.12/src/a.c"
            ]
        );
    }

    #[test]
    fn configure_caches_outside_the_source_are_left_out() {
        let mut t = tree(&[
            ("build/CMakeCache.txt", "cache"),
            ("build/meson-private/coredata.dat", "pickle"),
            ("build/CMakeFiles/x.dir/a.c.o", "object"),
            ("CMakeCache.txt", "shipped"),
        ]);
        let source = tree(&[("CMakeCache.txt", "shipped")]);
        let mut kept = t.clone();
        let caches = without_configure_caches(&mut t, &source, false);
        assert_eq!(caches.left_out.len(), 2);
        assert!(caches.kept.is_empty());
        assert!(paths(&t).contains(&"build/CMakeFiles/x.dir/a.c.o".to_owned()));
        assert!(paths(&t).contains(&"CMakeCache.txt".to_owned()));
        // Kept, CMake's cache stays; meson's never does.
        let caches = without_configure_caches(&mut kept, &source, true);
        assert_eq!(caches.left_out, [rp("build/meson-private/coredata.dat")]);
        assert_eq!(caches.kept, [rp("build/CMakeCache.txt")]);
        assert!(paths(&kept).contains(&"build/CMakeCache.txt".to_owned()));
    }

    #[test]
    fn makefiles_that_read_a_changed_variable() {
        let makefiles = vec![(
            rp("Makefile"),
            b"V = $(version)\nall:\n\techo ${pname}\n".to_vec(),
        )];
        let changed: Vec<String> = ["name", "version", "pname"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            read_by_makefiles(&changed, &makefiles),
            ["version", "pname"]
        );
    }

    #[test]
    fn libtool_reads_a_changed_variable_only_when_it_never_sets_it() {
        // libtool's own `name`, set from the file at hand before each use (libffi's).
        let own =
            b"func_basename \"$file\"\n\tname=$func_basename_result\n\tinstname=$dir/${name}i\n";
        let changed: Vec<String> = ["name", "version", "pname"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let libtool = |text: &[u8]| vec![(rp("build/libtool"), text.to_vec())];
        assert!(read_by_makefiles(&changed, &libtool(own)).is_empty());
        // Expanded and never set: the environment's value.
        let reads = b"echo \"$version\" ${pname:-x} $names\nmy_name=1\n";
        assert_eq!(
            read_by_makefiles(&changed, &libtool(reads)),
            ["version", "pname"]
        );
        // In a makefile, `$(name)` and `${name}` are make's own syntax, read whatever else
        // assigns it.
        let makefile = vec![(rp("Makefile"), b"name = x\nall:\n\techo ${name}\n".to_vec())];
        assert_eq!(read_by_makefiles(&changed, &makefile), ["name"]);
    }

    #[test]
    fn make_inputs() {
        for p in [
            "Makefile",
            "src/Makefile",
            "GNUmakefile",
            "libtool",
            "rules.mk",
            "x/flags.make",
        ] {
            assert!(is_make_input(p.as_bytes()), "{p}");
        }
        for p in [
            "config.h",
            "build.ninja",
            "src/make.c",
            "build/CMakeFiles/Makefile.cmake",
        ] {
            assert!(!is_make_input(p.as_bytes()), "{p}");
        }
    }
}
