//! Whether the build tool notices a source change by itself (design §3, issue 4). An
//! incremental build resumes make over the earlier tree and relies on its timestamp rule,
//! which sees a changed header only where the earlier build recorded a dependency on it:
//! compiler depfiles (`-MD`, automake's `.deps/`), rules that list it for an object (Lua's
//! Makefile), ninja's `.ninja_deps`. nixpkgs configures autotools projects with
//! `--disable-dependency-tracking`, so there a changed header leaves every object that
//! includes it stale. The rules:
//!
//! - a changed compile unit (`foo.c`) that no include directive names is seen: its object's
//!   rule lists it (unless an opaque file, below, may include it);
//! - a changed file that no include directive names and that is not a header (docs, data,
//!   scripts) is left to the build tool's own rules;
//! - anything else (a header, or a file some directive includes, like gnulib's
//!   `#include "regcomp.c"`) is seen only if a dependency record of the earlier build
//!   names it for an object, or if all that include it are changed compile units
//!   themselves; otherwise it is *untracked*, and the caller treats the compile units that
//!   include it, directly or through other files, as changed (make then recompiles their
//!   objects over the configured tree).
//!
//! Include directives are read from the new source (C-family files, grammars, assembler)
//! and the earlier build's generated files; names are compared by file name only, which
//! errs toward "included" (directives inside comments count). A file with a computed
//! include (`#include MACRO`, outside comments), or one that cannot be read, is *opaque*: it
//! counts as including every changed file, so what includes it is affected too. A forced
//! include (`-include x` in a makefile or in the build's variables, which no directive
//! shows) makes every compile unit affected ([`ForcedInclude`] says where).
//!
//! Pure: the trees are states; file contents come from the caller's readers.

use crate::checkpoint::{ContentHash, Entry, EntryKind, OverlayChange, RelPath, RootState};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Extensions of files a compiler turns into an object by themselves.
const COMPILE_UNIT_EXTENSIONS: &[&str] = &[
    "c", "cc", "cp", "cpp", "cxx", "c++", "C", "CC", "CPP", "m", "mm", "M", "S", "sx", "s", "f",
    "for", "ftn", "f77", "f90", "f95", "f03", "f08", "F", "FOR", "F77", "F90", "F95", "F03", "F08",
];

/// Extensions of files meant to be included.
const HEADER_EXTENSIONS: &[&str] = &[
    "h", "hh", "hp", "hpp", "hxx", "h++", "H", "HH", "HPP", "inc", "inl", "ipp", "tcc", "tpp",
    "txx", "def",
];

/// Other files whose include directives are read: grammars and lexers (their prologue ends
/// up in generated C), resource scripts, assembler, CUDA, rpcgen sources.
const OTHER_SCANNED_EXTENSIONS: &[&str] = &[
    "y", "yy", "ypp", "l", "ll", "lpp", "rc", "asm", "cu", "cuh", "x",
];

/// Extensions of object files: a rule for one of these names what its compile depends on.
const OBJECT_SUFFIXES: &[&str] = &[".o", ".lo", ".obj", ".os", ".So", ".$(OBJEXT)", ".@OBJEXT@"];

fn extension(path: &[u8]) -> Option<&str> {
    let name = file_name(path);
    let dot = name.iter().rposition(|&b| b == b'.')?;
    if dot == 0 {
        return None;
    }
    std::str::from_utf8(&name[dot + 1..]).ok()
}

fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// True for files a compiler turns into an object by themselves (`.c`, `.cpp`, `.S`, …).
pub fn is_compile_unit(path: &[u8]) -> bool {
    extension(path).is_some_and(|e| COMPILE_UNIT_EXTENSIONS.contains(&e))
}

fn is_header(path: &[u8]) -> bool {
    extension(path).is_some_and(|e| HEADER_EXTENSIONS.contains(&e))
}

fn is_scanned(path: &[u8]) -> bool {
    is_compile_unit(path)
        || is_header(path)
        || extension(path).is_some_and(|e| OTHER_SCANNED_EXTENSIONS.contains(&e))
}

/// How a file records dependencies, if it does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RecordKind {
    /// Make syntax: Makefiles and compiler depfiles.
    Make,
    /// ninja's binary `.ninja_deps` log.
    NinjaDeps,
}

fn record_kind(path: &RelPath) -> Option<RecordKind> {
    let bytes = path.as_bytes();
    let name = file_name(bytes);
    if name == b".ninja_deps" {
        return Some(RecordKind::NinjaDeps);
    }
    let in_deps_dir = path
        .parent()
        .and_then(|p| p.file_name().map(|n| n == b".deps"))
        .unwrap_or(false);
    let make_name = matches!(name, b"Makefile" | b"makefile" | b"GNUmakefile")
        || [".mk", ".make", ".d", ".Po", ".Plo", ".Tpo", ".dep"]
            .iter()
            .any(|s| name.ends_with(s.as_bytes()));
    (in_deps_dir || make_name).then_some(RecordKind::Make)
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

/// What one line says as an include directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Directive<'t> {
    /// A directive naming a file: its file name.
    Named(&'t [u8]),
    /// A directive naming no file literally (`#include MACRO`).
    Computed,
}

/// The include directive `line` is, if it is one (`#include "x"`, `#include <x>`,
/// `#include_next`, `#import`, C23 `#embed`, assembler `.include` and `.incbin`).
fn directive(line: &[u8]) -> Option<Directive<'_>> {
    let l = trim_start(line);
    let rest = if let Some(r) = l.strip_prefix(b"#") {
        let r = trim_start(r);
        let r = [&b"include_next"[..], b"include", b"import", b"embed"]
            .iter()
            .find_map(|kw| r.strip_prefix(*kw))?;
        // `#includes` or `#import_foo` are other words.
        match r.first() {
            Some(b) if b.is_ascii_whitespace() || *b == b'"' || *b == b'<' => {}
            None => {}
            Some(_) => return None,
        }
        r
    } else {
        l.strip_prefix(b".include")
            .or_else(|| l.strip_prefix(b".incbin"))?
    };
    let r = trim_start(rest);
    let close = match r.first() {
        Some(b'"') => b'"',
        Some(b'<') => b'>',
        _ => return Some(Directive::Computed),
    };
    Some(match r[1..].iter().position(|&b| b == close) {
        Some(end) => Directive::Named(file_name(&r[1..1 + end])),
        None => Directive::Computed,
    })
}

/// Where a C-family line ends lexically, for the next line: in code, in a block comment,
/// or (after a backslash-newline) still in a line comment or a string or character literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LexState {
    Code,
    BlockComment,
    LineComment,
    Literal(u8),
}

/// Where `*/` starts in `text`, if it does.
fn comment_end(text: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(j) = memchr::memchr(b'*', &text[from..]) {
        let star = from + j;
        if text.get(star + 1) == Some(&b'/') {
            return Some(star);
        }
        from = star + 1;
    }
    None
}

/// The state the line after `line` starts in, `line` starting in `start` (C and C++
/// comments; string and character literals, whose content opens no comment). None when
/// `line` opens a C++ raw string literal (`R"x(`), whose end this does not look for:
/// comments are then no longer told apart for the rest of the file, which errs toward "a
/// directive". A literal left open at the end of a line ends there (a C++14 digit separator,
/// an apostrophe in `#error`) unless a backslash continues the line, as a line comment does.
fn state_after_line(line: &[u8], start: LexState) -> Option<LexState> {
    let body_end = line.len() - usize::from(line.ends_with(b"\r"));
    let spliced = line[..body_end].ends_with(b"\\");
    let mut state = start;
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        match state {
            LexState::LineComment => break,
            LexState::BlockComment => match comment_end(rest) {
                Some(j) => {
                    i += j + 2;
                    state = LexState::Code;
                }
                None => break,
            },
            LexState::Literal(quote) => match memchr::memchr2(quote, b'\\', rest) {
                Some(j) if rest[j] == b'\\' => i += j + 2,
                Some(j) => {
                    i += j + 1;
                    state = LexState::Code;
                }
                None => break,
            },
            LexState::Code => {
                let Some(j) = memchr::memchr3(b'/', b'"', b'\'', rest) else {
                    break;
                };
                let k = i + j;
                i = k + 1;
                match (line[k], line.get(k + 1)) {
                    (b'"', _) if k > 0 && line[k - 1] == b'R' => return None,
                    (q @ (b'"' | b'\''), _) => state = LexState::Literal(q),
                    // Past the `*` too: `/*/` opens a comment and does not close it.
                    (b'/', Some(b'*')) => {
                        state = LexState::BlockComment;
                        i = k + 2;
                    }
                    (b'/', Some(b'/')) => state = LexState::LineComment,
                    _ => {}
                }
            }
        }
    }
    Some(match state {
        LexState::LineComment | LexState::Literal(_) if !spliced => LexState::Code,
        s => s,
    })
}

/// What of `line` follows its leading blanks and comments, `line` starting in `start`; None
/// when nothing but comment or literal text does (no directive can start there).
fn after_leading_comments(line: &[u8], start: LexState) -> Option<&[u8]> {
    let mut rest = match start {
        LexState::Code => line,
        LexState::BlockComment => &line[comment_end(line)? + 2..],
        LexState::LineComment | LexState::Literal(_) => return None,
    };
    loop {
        rest = trim_start(rest);
        match rest.strip_prefix(b"/*") {
            Some(r) => rest = &r[comment_end(r)? + 2..],
            None => return Some(rest),
        }
    }
}

/// Extensions of Fortran sources, whose comments are not C's.
const FORTRAN_EXTENSIONS: &[&str] = &[
    "f", "for", "ftn", "f77", "f90", "f95", "f03", "f08", "F", "FOR", "F77", "F90", "F95", "F03",
    "F08",
];

/// Whether `path`'s comments are C's (`/* */`, `//`): everything scanned but Fortran.
fn has_c_comments(path: &[u8]) -> bool {
    !extension(path).is_some_and(|e| FORTRAN_EXTENSIONS.contains(&e))
}

/// Calls `found` with the file name of every file `text`'s include directives name, inside
/// comments too (erring toward "included"); returns true if a directive outside comments
/// names no file literally (`#include MACRO`). With `c_comments` false every line counts as
/// outside comments. A directive that a comment precedes on its line (`/* x */ #include
/// "a.h"`) counts, as it does for the preprocessor.
fn include_directives(text: &[u8], c_comments: bool, mut found: impl FnMut(&[u8])) -> bool {
    let mut computed = false;
    let mut lex = c_comments.then_some(LexState::Code);
    for line in text.split(|&b| b == b'\n') {
        let raw = directive(line);
        if let Some(Directive::Named(name)) = raw {
            found(name);
        }
        let Some(start) = lex else {
            computed |= raw == Some(Directive::Computed);
            continue;
        };
        match after_leading_comments(line, start).and_then(directive) {
            Some(Directive::Named(name)) if raw != Some(Directive::Named(name)) => found(name),
            Some(Directive::Named(_)) | None => {}
            Some(Directive::Computed) => computed = true,
        }
        lex = state_after_line(line, start);
    }
    computed
}

/// Calls `prerequisite` with every literal prerequisite of every rule in `text` (make
/// syntax) that has an object among its targets. Recipes, assignments, target-specific
/// variables, order-only prerequisites and names with `$` or `%` are skipped.
fn object_prerequisites(text: &[u8], mut prerequisite: impl FnMut(&[u8])) {
    make_rules(text, |targets, prerequisites| {
        if targets.iter().any(|t| is_object(t)) {
            prerequisites.iter().for_each(|p| prerequisite(p));
        }
    });
}

/// Calls `target` with every literal target of every rule in `text` (make syntax).
fn rule_targets(text: &[u8], mut target: impl FnMut(&[u8])) {
    make_rules(text, |targets, _| targets.iter().for_each(|t| target(t)));
}

fn is_object(name: &[u8]) -> bool {
    OBJECT_SUFFIXES
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s.as_bytes()))
}

/// Calls `each(targets, prerequisites)` for every rule of `text` (make syntax), with the
/// literal names only (no `$` or `%`) and without order-only prerequisites.
fn make_rules(text: &[u8], mut each: impl FnMut(&[&[u8]], &[&[u8]])) {
    make_logical_lines(text, |line| {
        if let Some((targets, prerequisites)) = parse_rule(line) {
            each(&targets, &prerequisites);
        }
    });
}

/// Calls `each` with every logical line of make syntax in `text`: continuation lines joined
/// with a space, comments (from `#` on) cut off.
fn make_logical_lines(text: &[u8], mut each: impl FnMut(&[u8])) {
    let mut logical: Vec<u8> = Vec::new();
    let mut lines = text.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let continued = line.ends_with(b"\\");
        logical.extend_from_slice(if continued {
            &line[..line.len() - 1]
        } else {
            line
        });
        if continued && lines.peek().is_some() {
            logical.push(b' ');
            continue;
        }
        match logical.iter().position(|&b| b == b'#') {
            Some(i) => each(&logical[..i]),
            None => each(&logical),
        }
        logical.clear();
    }
}

/// A rule's literal targets and prerequisites.
type Rule<'l> = (Vec<&'l [u8]>, Vec<&'l [u8]>);

/// The literal targets and prerequisites of a rule line, or None for anything else
/// (recipes, assignments, target-specific variables).
fn parse_rule(line: &[u8]) -> Option<Rule<'_>> {
    if line.first() == Some(&b'\t') {
        return None;
    }
    let colon = line.iter().position(|&b| b == b':')?;
    let targets = &line[..colon];
    if targets.contains(&b'=') {
        return None;
    }
    let mut rest = &line[colon + 1..];
    if let Some(r) = rest.strip_prefix(b":") {
        rest = r;
    }
    if rest.first() == Some(&b'=') {
        return None; // `:=`, `::=`
    }
    let rest = match rest.iter().position(|&b| b == b';') {
        Some(i) => &rest[..i],
        None => rest,
    };
    if rest.contains(&b'=') {
        return None; // target-specific variable
    }
    let rest = match rest.iter().position(|&b| b == b'|') {
        Some(i) => &rest[..i],
        None => rest,
    };
    let literal = |t: &&[u8]| !t.is_empty() && !t.contains(&b'$') && !t.contains(&b'%');
    let prerequisites: Vec<&[u8]> = rest
        .split(|b| b.is_ascii_whitespace())
        .filter(literal)
        .collect();
    // Object targets may be written with a variable suffix (`hello.$(OBJEXT)`).
    let targets: Vec<&[u8]> = targets
        .split(|b| b.is_ascii_whitespace())
        .filter(|t| is_object(t) || literal(t))
        .collect();
    Some((targets, prerequisites))
}

/// Calls `path` with every path ninja's `.ninja_deps` log records (outputs and the inputs
/// the compiler reported). An unknown header or version yields nothing.
fn ninja_deps_paths(data: &[u8], mut path: impl FnMut(&[u8])) {
    const MAGIC: &[u8] = b"# ninjadeps\n";
    let Some(rest) = data.strip_prefix(MAGIC) else {
        return;
    };
    let u32_at = |d: &[u8], i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(d.get(i..i + 4)?.try_into().ok()?))
    };
    let Some(version) = u32_at(rest, 0) else {
        return;
    };
    if !(3..=4).contains(&version) {
        return;
    }
    let mut at = 4;
    while let Some(header) = u32_at(rest, at) {
        let size = (header & 0x7fff_ffff) as usize;
        let Some(record) = rest.get(at + 4..at + 4 + size) else {
            return;
        };
        at += 4 + size;
        if header & 0x8000_0000 != 0 {
            continue; // a deps record: ids only
        }
        let name = if version == 4 {
            &record[..record.len().saturating_sub(4)]
        } else {
            record
        };
        let end = name.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        path(&name[..end]);
    }
}

/// `dir/token` with `.` and `..` resolved, or None if it leaves the tree.
pub(crate) fn join_normalized(dir: &RelPath, token: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = dir.components().collect();
    for c in token.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join(&b'/'))
}

/// The tree paths a record at `record` may mean by `token`: absolute paths below
/// `build_top`, or the token relative to the record's directory or any directory above it
/// (make runs from one of them).
fn candidates(record: &RelPath, token: &[u8], build_top: &[u8]) -> Vec<Vec<u8>> {
    if token.first() == Some(&b'/') {
        let mut prefix = build_top.to_vec();
        prefix.push(b'/');
        return token
            .strip_prefix(prefix.as_slice())
            .and_then(|rel| join_normalized(&RelPath::root(), rel))
            .into_iter()
            .collect();
    }
    let mut out = Vec::new();
    let mut dir = record.parent();
    while let Some(d) = dir {
        if let Some(p) = join_normalized(&d, token) {
            out.push(p);
        }
        dir = d.parent();
    }
    out
}

/// What [`untracked_changes`] reads.
pub struct Trees<'a> {
    /// The earlier build's source after `patchPhase`.
    pub old_source: &'a RootState,
    /// This build's source after `patchPhase`.
    pub new_source: &'a RootState,
    /// The earlier build's tree after `buildPhase` (with this build's paths).
    pub built: &'a RootState,
    /// The build directory's absolute path, as records write absolute paths.
    pub build_top: &'a [u8],
    /// Whether the build's environment passes the compiler a forced include (`-include`,
    /// `-imacros`, e.g. in `NIX_CFLAGS_COMPILE`): then no include directive shows it.
    pub forced_include_in_environment: bool,
}

/// What [`untracked_changes`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tracking {
    /// Changed paths make may miss, by the rules in this module's documentation.
    pub untracked: Vec<RelPath>,
    /// The compile units that include one of them by name, directly or through other files
    /// (the caller makes them newer than their objects), or why that cannot be bounded
    /// (then every compile unit).
    pub affected_units: AffectedUnits,
    /// Deleted paths a dependency record of the earlier build names as a prerequisite of an
    /// object while no rule makes them (a depfile written without `-MP`): make would stop
    /// with "No rule to make target" where a clean build succeeds.
    pub missing_prerequisites: Vec<RelPath>,
}

/// The compile units an untracked change reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AffectedUnits {
    /// Those that include a changed file by name, or one of the `opaque` files, directly or
    /// through other files (and the opaque files that are compile units themselves).
    Bounded {
        units: BTreeSet<RelPath>,
        opaque: Vec<Opaque>,
    },
    /// Every compile unit, for this reason.
    All(ForcedInclude),
}

impl Default for AffectedUnits {
    fn default() -> Self {
        AffectedUnits::Bounded {
            units: BTreeSet::new(),
            opaque: Vec::new(),
        }
    }
}

/// A file whose includes cannot be read off its directives, so it counts as including every
/// changed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opaque {
    /// A directive outside comments in this file names no file literally (`#include MACRO`).
    ComputedInclude(RelPath),
    /// This file could not be read.
    Unreadable(RelPath),
}

impl std::fmt::Display for Opaque {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Opaque::ComputedInclude(p) => {
                write!(f, "a computed include (`#include MACRO`) in {p}")
            }
            Opaque::Unreadable(p) => write!(f, "{p}, which could not be read"),
        }
    }
}

/// A forced include (`-include x`, `-imacros x`), which reaches every compile unit without a
/// directive to show it; the first one found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForcedInclude {
    /// In this makefile of the earlier build.
    InMakefile(RelPath),
    /// In the build's variables.
    InEnvironment,
}

impl std::fmt::Display for ForcedInclude {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForcedInclude::InMakefile(p) => {
                write!(
                    f,
                    "{p} passes a forced include (`-include`) that no directive shows"
                )
            }
            ForcedInclude::InEnvironment => write!(
                f,
                "the build's variables pass a forced include (`-include`) that no directive shows"
            ),
        }
    }
}

/// True if `token` passes the compiler a file to include before the source (`-include x`,
/// `-imacros x`). The long forms (`--include=x`) are left out: other tools share them
/// (help2man, grep, rsync), and compilers are hardly given them.
fn is_forced_include_flag(token: &[u8]) -> bool {
    token == b"-include" || token == b"-imacros"
}

/// True if a logical line of make syntax in `text` has a forced-include flag after its first
/// word (a first word `-include` is make's own directive), comments left out.
fn has_forced_include(text: &[u8]) -> bool {
    let mut found = false;
    make_logical_lines(text, |line| {
        found = found
            || line
                .split(|b| b.is_ascii_whitespace())
                .filter(|t| !t.is_empty())
                .skip(1)
                .any(is_forced_include_flag);
    });
    found
}

/// True if any word of `values` (a build's variable values) is a forced-include flag.
pub fn forced_include_in<'v>(values: impl IntoIterator<Item = &'v [u8]>) -> bool {
    values.into_iter().any(|v| {
        v.split(|b| b.is_ascii_whitespace())
            .any(is_forced_include_flag)
    })
}

/// Reads a file's content: `(path, hash, from_new_source)`; None when it cannot be read,
/// which counts as "may include anything".
pub type Reader<'a> = dyn Fn(&RelPath, &ContentHash, bool) -> Option<Vec<u8>> + Sync + 'a;

fn file_hash(e: &Entry) -> Option<ContentHash> {
    match &e.kind {
        EntryKind::File { blake3, .. } => Some(*blake3),
        _ => None,
    }
}

/// Below this many bytes of files to scan, [`scan_includes`] reads them on the calling
/// thread: threads would cost more than they save.
const PARALLEL_SCAN_BYTES: u64 = 8 << 20;

/// The include directives of each file of `files` (path, content, whether it is in the new
/// source, size), in order: the file names they name and whether one names none literally
/// ([`include_directives`]), or None when the file cannot be read. Large sources (the
/// reading and the scan grow with the whole source, not the change) are read on every core.
fn scan_includes(
    files: &[(&RelPath, ContentHash, bool, u64)],
    read: &Reader,
) -> Vec<Option<(Vec<Vec<u8>>, bool)>> {
    let bytes: u64 = files.iter().map(|f| f.3).sum();
    let threads = if bytes >= PARALLEL_SCAN_BYTES {
        crate::checkpoint::parallel::all_cores()
    } else {
        1
    };
    scan_includes_on(files, read, threads)
}

/// [`scan_includes`] on `threads` threads (one: the calling thread).
fn scan_includes_on(
    files: &[(&RelPath, ContentHash, bool, u64)],
    read: &Reader,
    threads: usize,
) -> Vec<Option<(Vec<Vec<u8>>, bool)>> {
    let scan = |&(path, hash, new, _): &(&RelPath, ContentHash, bool, u64)| {
        let found = read(path, &hash, new).map(|text| {
            let mut names = Vec::new();
            let computed = include_directives(&text, has_c_comments(path.as_bytes()), |n| {
                names.push(n.to_vec())
            });
            (names, computed)
        });
        Ok(found)
    };
    crate::checkpoint::parallel::run_parallel(files, threads, scan)
        .unwrap_or_else(|e| panic!("a scan of the source's include directives failed: {e}"))
}

/// The changed paths (files and symlinks among `changes`, `overlay_diff(old_source,
/// new_source)`) the build tool may miss, by the rules in this module's documentation, and
/// the compile units that include them.
pub fn untracked_changes<'a>(
    changes: &'a [(RelPath, OverlayChange)],
    trees: &Trees<'a>,
    read: &Reader,
) -> Tracking {
    let is_dir = |p: &RelPath| {
        trees
            .new_source
            .get(p)
            .or(trees.old_source.get(p))
            .is_some_and(Entry::is_dir)
    };
    let changed: Vec<&RelPath> = changes
        .iter()
        .map(|(p, _)| p)
        .filter(|p| !p.is_root() && !is_dir(p))
        .collect();
    if changed.is_empty() {
        return Tracking::default();
    }

    // Who includes which file name: the new source, and what the earlier build generated
    // (files in neither source tree).
    let mut includers: HashMap<Vec<u8>, BTreeSet<RelPath>> = HashMap::new();
    let mut opaque: Vec<Opaque> = Vec::new();
    let generated = trees
        .built
        .iter()
        .filter(|(p, _)| !trees.old_source.contains_key(*p) && !trees.new_source.contains_key(*p));
    let scanned: Vec<(&RelPath, ContentHash, bool, u64)> = trees
        .new_source
        .iter()
        .map(|(p, e)| (p, e, true))
        .chain(generated.map(|(p, e)| (p, e, false)))
        .filter_map(|(path, entry, new)| match &entry.kind {
            EntryKind::File { blake3, size, .. } if is_scanned(path.as_bytes()) => {
                Some((path, *blake3, new, *size))
            }
            _ => None,
        })
        .collect();
    for ((path, ..), found) in scanned.iter().zip(scan_includes(&scanned, read)) {
        match found {
            None => opaque.push(Opaque::Unreadable((*path).clone())),
            Some((names, computed)) => {
                for name in names {
                    includers.entry(name).or_default().insert((*path).clone());
                }
                if computed {
                    opaque.push(Opaque::ComputedInclude((*path).clone()));
                }
            }
        }
    }
    let included_by = |p: &RelPath| -> Option<&BTreeSet<RelPath>> {
        p.file_name().and_then(|n| includers.get(n))
    };

    // First the changed files the build tool sees by their own rule: compile units nothing
    // includes. An opaque file may include any of them.
    let own_rule: HashSet<&RelPath> = if opaque.is_empty() {
        changed
            .iter()
            .copied()
            .filter(|p| is_compile_unit(p.as_bytes()) && included_by(p).is_none())
            .collect()
    } else {
        HashSet::new()
    };
    let mut needs_record: Vec<&RelPath> = Vec::new();
    for p in &changed {
        if own_rule.contains(p) {
            continue;
        }
        match included_by(p) {
            None if opaque.is_empty()
                || !(is_header(p.as_bytes()) || is_compile_unit(p.as_bytes())) =>
            {
                // Included nowhere: a header nothing uses, or a file make's rules name (an
                // opaque file may include a header or a compile unit).
            }
            Some(by) if by.iter().all(|i| own_rule.contains(i)) => {
                // Only changed compile units include it, and they are recompiled anyway.
            }
            _ => needs_record.push(p),
        }
    }
    // Deleted files: make stops if a record still names one and nothing makes it.
    let removed: Vec<&RelPath> = changes
        .iter()
        .filter(|(p, c)| *c == OverlayChange::Removed && changed.contains(&p))
        .map(|(p, _)| p)
        .collect();
    if needs_record.is_empty() && removed.is_empty() {
        return Tracking::default();
    }

    // Then the earlier build's dependency records.
    let names = |paths: &[&'a RelPath]| {
        let mut by_name: HashMap<&'a [u8], Vec<&'a RelPath>> = HashMap::new();
        for p in paths {
            if let Some(n) = p.file_name() {
                by_name.entry(n).or_default().push(*p);
            }
        }
        by_name
    };
    let (by_name, removed_by_name) = (names(&needs_record), names(&removed));
    let mut seen: HashSet<&RelPath> = HashSet::new();
    let (mut removed_named, mut removed_made): (HashSet<&RelPath>, HashSet<&RelPath>) =
        Default::default();
    let mut forced = trees
        .forced_include_in_environment
        .then_some(ForcedInclude::InEnvironment);
    for (path, entry) in trees.built {
        let (Some(kind), Some(hash)) = (record_kind(path), file_hash(entry)) else {
            continue;
        };
        let Some(text) = read(path, &hash, false) else {
            continue;
        };
        let resolve = |map: &HashMap<&[u8], Vec<&'a RelPath>>,
                       token: &[u8],
                       found: &mut HashSet<&'a RelPath>| {
            let Some(paths) = map.get(file_name(token)) else {
                return;
            };
            for c in candidates(path, token, trees.build_top) {
                if let Some(p) = paths.iter().find(|p| p.as_bytes() == c.as_slice()) {
                    found.insert(*p);
                }
            }
        };
        match kind {
            RecordKind::Make => {
                object_prerequisites(&text, |t| {
                    resolve(&by_name, t, &mut seen);
                    resolve(&removed_by_name, t, &mut removed_named);
                });
                rule_targets(&text, |t| resolve(&removed_by_name, t, &mut removed_made));
                if forced.is_none() && has_forced_include(&text) {
                    forced = Some(ForcedInclude::InMakefile(path.clone()));
                }
            }
            // ninja takes a missing input as dirty and rebuilds: no removed-file check.
            RecordKind::NinjaDeps => ninja_deps_paths(&text, |t| resolve(&by_name, t, &mut seen)),
        }
    }
    let missing_prerequisites: Vec<RelPath> = removed
        .iter()
        .filter(|p| removed_named.contains(*p) && !removed_made.contains(*p))
        .map(|p| (*p).clone())
        .collect();
    let untracked: Vec<RelPath> = needs_record
        .into_iter()
        .filter(|p| !seen.contains(p))
        .cloned()
        .collect();
    if untracked.is_empty() {
        return Tracking {
            missing_prerequisites,
            ..Tracking::default()
        };
    }

    // The compile units that include an untracked file, through any chain of includes. An
    // opaque file may include it under any name: it counts as an includer of each, so what
    // reaches the file through a chain that passes an opaque one is found too.
    let affected_units = if let Some(why) = forced {
        AffectedUnits::All(why)
    } else {
        let mut units = BTreeSet::new();
        let mut names: Vec<Vec<u8>> = untracked
            .iter()
            .filter_map(|p| p.file_name().map(<[u8]>::to_vec))
            .collect();
        let mut visited: HashSet<Vec<u8>> = names.iter().cloned().collect();
        let mut reach = |includer: &RelPath, names: &mut Vec<Vec<u8>>| {
            if is_compile_unit(includer.as_bytes()) {
                units.insert(includer.clone());
            }
            if let Some(n) = includer.file_name() {
                if visited.insert(n.to_vec()) {
                    names.push(n.to_vec());
                }
            }
        };
        for o in &opaque {
            let (Opaque::ComputedInclude(p) | Opaque::Unreadable(p)) = o;
            reach(p, &mut names);
        }
        while let Some(name) = names.pop() {
            for includer in includers.get(&name).into_iter().flatten() {
                reach(includer, &mut names);
            }
        }
        AffectedUnits::Bounded { units, opaque }
    };
    Tracking {
        untracked,
        affected_units,
        missing_prerequisites,
    }
}

/// The compile units of `tree` (regular files), as [`is_compile_unit`] names them.
pub fn compile_units(tree: &RootState) -> Vec<RelPath> {
    tree.iter()
        .filter(|(p, e)| file_hash(e).is_some() && is_compile_unit(p.as_bytes()))
        .map(|(p, _)| p.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::overlay_diff;
    use crate::checkpoint::testutil::{dir_entry, file_entry, tree_of};
    use std::collections::BTreeMap;

    /// [`tree_of`] the files, their contents added to `contents` by hash.
    fn tree(files: &[(&str, &str)], contents: &mut BTreeMap<ContentHash, Vec<u8>>) -> RootState {
        for (_, c) in files {
            contents.insert(ContentHash::of(c.as_bytes()), c.as_bytes().to_vec());
        }
        tree_of(files)
    }

    #[test]
    fn a_scan_of_include_directives_on_several_threads_finds_what_one_thread_finds() {
        // Files that name headers, one with a computed include, one that cannot be read, a
        // Fortran file (no C comments), many of them so that every thread gets some.
        let mut texts: Vec<(String, Option<String>)> = Vec::new();
        for i in 0..200 {
            let text = match i % 5 {
                0 => format!("#include \"h{i}.h\"\n#include <sys/{i}.h>\nint x{i};\n"),
                1 => format!("/* #include \"c{i}.h\" */\n#include HEADER_{i}\n"),
                2 => format!("  # include \"a{i}.h\" // note\n"),
                3 => format!("      include 'f{i}.inc'\n"),
                _ => String::new(),
            };
            let name = if i % 5 == 3 {
                format!("src/f{i}.f90")
            } else {
                format!("src/u{i}.c")
            };
            texts.push((name, (i % 7 != 6).then_some(text)));
        }
        let paths: Vec<RelPath> = texts
            .iter()
            .map(|(n, _)| RelPath::new(n.as_bytes()).expect("relative path"))
            .collect();
        let contents: HashMap<ContentHash, Vec<u8>> = texts
            .iter()
            .filter_map(|(n, t)| {
                let t = t.as_ref()?;
                let content = format!("{n}\n{t}").into_bytes();
                Some((ContentHash::of(&content), content))
            })
            .collect();
        let files: Vec<(&RelPath, ContentHash, bool, u64)> = texts
            .iter()
            .zip(&paths)
            .map(|((n, t), p)| {
                let content = format!("{n}\n{}", t.as_deref().unwrap_or("unreadable"));
                (
                    p,
                    ContentHash::of(content.as_bytes()),
                    true,
                    content.len() as u64,
                )
            })
            .collect();
        let read = |_: &RelPath, h: &ContentHash, _: bool| contents.get(h).cloned();
        let one = scan_includes_on(&files, &read, 1);
        assert_eq!(one.len(), files.len());
        assert!(one.iter().any(Option::is_none), "an unreadable file");
        assert!(
            one.iter().flatten().any(|(_, computed)| *computed),
            "a computed include"
        );
        assert!(
            one.iter()
                .flatten()
                .any(|(names, _)| names.contains(&b"h0.h".to_vec())),
            "a named header"
        );
        for threads in [2, 3, 8] {
            assert_eq!(
                scan_includes_on(&files, &read, threads),
                one,
                "{threads} threads"
            );
        }
    }

    /// [`untracked_changes`] between two sources, with `built` = the old source plus
    /// `products`.
    fn tracking(
        old: &[(&str, &str)],
        new: &[(&str, &str)],
        products: &[(&str, &str)],
        forced_in_environment: bool,
    ) -> Tracking {
        let mut contents = BTreeMap::new();
        let old_source = tree(old, &mut contents);
        let new_source = tree(new, &mut contents);
        let all: Vec<(&str, &str)> = old.iter().chain(products).copied().collect();
        let built = tree(&all, &mut contents);
        let changes = overlay_diff(&old_source, &new_source);
        let read = |_: &RelPath, h: &ContentHash, _: bool| contents.get(h).cloned();
        let trees = Trees {
            old_source: &old_source,
            new_source: &new_source,
            built: &built,
            build_top: b"/build",
            forced_include_in_environment: forced_in_environment,
        };
        untracked_changes(&changes, &trees, &read)
    }

    /// The untracked changes, as strings.
    fn untracked(
        old: &[(&str, &str)],
        new: &[(&str, &str)],
        products: &[(&str, &str)],
    ) -> Vec<String> {
        tracking(old, new, products, false)
            .untracked
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    /// The compile units an untracked change affects and the opaque files that count as
    /// including it, or why all units are.
    fn affected_through(
        old: &[(&str, &str)],
        new: &[(&str, &str)],
        products: &[(&str, &str)],
        forced_in_environment: bool,
    ) -> Result<(Vec<String>, Vec<Opaque>), ForcedInclude> {
        let t = tracking(old, new, products, forced_in_environment);
        assert!(!t.untracked.is_empty());
        match t.affected_units {
            AffectedUnits::Bounded { units, opaque } => {
                Ok((units.iter().map(|p| p.to_string()).collect(), opaque))
            }
            AffectedUnits::All(why) => Err(why),
        }
    }

    /// [`affected_through`] for sources without opaque files.
    fn affected(
        old: &[(&str, &str)],
        new: &[(&str, &str)],
        products: &[(&str, &str)],
        forced_in_environment: bool,
    ) -> Result<Vec<String>, ForcedInclude> {
        affected_through(old, new, products, forced_in_environment).map(|(units, opaque)| {
            assert_eq!(opaque, []);
            units
        })
    }

    fn rp(p: &str) -> RelPath {
        RelPath::from_escaped(p).unwrap()
    }

    #[test]
    fn affected_units_follow_includes_through_headers() {
        let old = [
            ("p/src/hello.c", HELLO_C),
            ("p/src/system.h", "#include \"gettext.h\"\n"),
            ("p/lib/gettext.h", "1"),
            ("p/lib/other.c", "#include \"gettext.h\"\n"),
            ("p/lib/unrelated.c", "#include <stdio.h>\n"),
        ];
        let mut new = old;
        new[2] = ("p/lib/gettext.h", "2");
        assert_eq!(
            affected(&old, &new, &[], false),
            Ok(vec!["p/lib/other.c".to_owned(), "p/src/hello.c".to_owned()])
        );
        // A generated file in between counts, as a compile unit and as a link.
        let products = [("p/src/gen.c", "#include \"system.h\"\n")];
        assert_eq!(
            affected(&old, &new, &products, false),
            Ok(vec![
                "p/lib/other.c".to_owned(),
                "p/src/gen.c".to_owned(),
                "p/src/hello.c".to_owned()
            ])
        );
        // Forced includes hide the graph: every compile unit, and the log says where.
        assert_eq!(
            affected(&old, &new, &[], true),
            Err(ForcedInclude::InEnvironment)
        );
        let makefile = "CFLAGS = -g -include lib/gettext.h\n";
        assert_eq!(
            affected(&old, &new, &[("p/Makefile", makefile)], false),
            Err(ForcedInclude::InMakefile(rp("p/Makefile")))
        );
        // make's own `-include` directive is not one.
        let makefile = "-include $(DEPS)\n#\t$(CC) -include x.h\n";
        assert!(affected(&old, &new, &[("p/Makefile", makefile)], false).is_ok());
        // A file with a computed include may include it under any name: it counts as an
        // includer (a compile unit itself here), and so does what includes the file.
        let mut computed = new;
        computed[4] = ("p/lib/unrelated.c", "#include HEADER\n");
        let mut old_computed = old;
        old_computed[4] = computed[4];
        assert_eq!(
            affected_through(&old_computed, &computed, &[], false),
            Ok((
                vec![
                    "p/lib/other.c".to_owned(),
                    "p/lib/unrelated.c".to_owned(),
                    "p/src/hello.c".to_owned()
                ],
                vec![Opaque::ComputedInclude(rp("p/lib/unrelated.c"))]
            ))
        );
        let old_opaque_header = [
            ("p/src/hello.c", HELLO_C),
            ("p/src/system.h", "#include \"gettext.h\"\n"),
            ("p/lib/gettext.h", "1"),
            ("p/lib/platform.h", "#include PLATFORM_H\n"),
            ("p/lib/a.c", "#include \"platform.h\"\n"),
            ("p/lib/b.c", "#include <stdio.h>\n"),
        ];
        let mut new_opaque_header = old_opaque_header;
        new_opaque_header[2] = ("p/lib/gettext.h", "2");
        assert_eq!(
            affected_through(&old_opaque_header, &new_opaque_header, &[], false),
            Ok((
                vec!["p/lib/a.c".to_owned(), "p/src/hello.c".to_owned()],
                vec![Opaque::ComputedInclude(rp("p/lib/platform.h"))]
            ))
        );
        // With a forced include as well, every unit.
        assert_eq!(
            affected_through(&old_computed, &computed, &[], true),
            Err(ForcedInclude::InEnvironment)
        );
        // But not one in a comment: gnulib's minmax.h says, inside its opening comment,
        // "#include this file as the last one" at the start of a line.
        let comment = "/* Note:\n   #include this file as the last one.  */\n#include <limits.h>\n";
        computed[4] = ("p/lib/minmax.h", comment);
        old_computed[4] = computed[4];
        assert_eq!(
            affected(&old_computed, &computed, &[], false),
            Ok(vec!["p/lib/other.c".to_owned(), "p/src/hello.c".to_owned()])
        );
        // An unreadable file may include anything.
        let t = {
            let mut contents = BTreeMap::new();
            let old_source = tree(&old, &mut contents);
            let new_source = tree(&new, &mut contents);
            let changes = overlay_diff(&old_source, &new_source);
            let unreadable = ContentHash::of(b"#include <stdio.h>\n");
            let read = |_: &RelPath, h: &ContentHash, _: bool| {
                (*h != unreadable)
                    .then(|| contents.get(h).cloned())
                    .flatten()
            };
            let trees = Trees {
                old_source: &old_source,
                new_source: &new_source,
                built: &old_source,
                build_top: b"/build",
                forced_include_in_environment: false,
            };
            untracked_changes(&changes, &trees, &read)
        };
        assert_eq!(
            t.affected_units,
            AffectedUnits::Bounded {
                units: ["p/lib/other.c", "p/lib/unrelated.c", "p/src/hello.c"]
                    .map(rp)
                    .into(),
                opaque: vec![Opaque::Unreadable(rp("p/lib/unrelated.c"))]
            }
        );
    }

    #[test]
    fn forced_include_flags_in_variables() {
        assert!(forced_include_in([&b"-O2 -include /build/p/compat.h"[..]]));
        assert!(forced_include_in([&b"-imacros x.h"[..]]));
        assert!(!forced_include_in([&b"help2man --include=hello.x"[..]]));
        assert!(!forced_include_in([
            &b"-I/nix/store/abc-linux-headers-include -O2"[..]
        ]));
    }

    const HELLO_C: &str = "#include <config.h>\n#include \"system.h\"\nint main() {}\n";

    #[test]
    fn a_changed_compile_unit_is_seen_by_its_own_rule() {
        let old = [
            ("p/src/hello.c", HELLO_C),
            ("p/src/system.h", "#define A 1\n"),
        ];
        let new = [
            (
                "p/src/hello.c",
                "#include \"system.h\"\nint main() { return 1; }\n",
            ),
            ("p/src/system.h", "#define A 1\n"),
        ];
        assert!(untracked(&old, &new, &[("p/src/hello.o", "obj")]).is_empty());
        // Unless an opaque file may include it (`#include IMPL` naming `impl.c`): then the
        // units that reach the opaque file are compiled again, unless a record names it.
        let old = [
            ("p/src/main.c", "#define IMPL \"impl.c\"\n#include IMPL\n"),
            ("p/src/impl.c", "int x = 1;\n"),
        ];
        let mut new = old;
        new[1] = ("p/src/impl.c", "int x = 2;\n");
        assert_eq!(
            affected_through(&old, &new, &[], false),
            Ok((
                vec!["p/src/main.c".to_owned()],
                vec![Opaque::ComputedInclude(rp("p/src/main.c"))]
            ))
        );
        let depfile = "src/main.o: src/main.c src/impl.c\n";
        assert!(untracked(&old, &new, &[("p/src/.deps/main.Po", depfile)]).is_empty());
    }

    #[test]
    fn a_header_without_dependency_records_is_untracked() {
        let old = [
            ("p/src/hello.c", HELLO_C),
            ("p/src/system.h", "#define A 1\n"),
        ];
        let new = [
            ("p/src/hello.c", HELLO_C),
            ("p/src/system.h", "#define A 2\n"),
        ];
        // automake without dependency tracking: the header is only a listed source.
        let makefile =
            "hello_SOURCES = src/hello.c src/system.h\nsrc/hello.$(OBJEXT): src/$(am__dirstamp)\n";
        assert_eq!(
            untracked(
                &old,
                &new,
                &[("p/Makefile", makefile), ("p/src/hello.o", "obj")]
            ),
            ["p/src/system.h"]
        );
    }

    #[test]
    fn depfiles_and_makefile_rules_track_headers() {
        let old = [
            ("z/programs/cli.c", "#include \"fileio.h\"\n"),
            ("z/programs/fileio.h", "1"),
        ];
        let new = [
            ("z/programs/cli.c", "#include \"fileio.h\"\n"),
            ("z/programs/fileio.h", "2"),
        ];
        // A gcc -MMD -MP depfile, relative to the directory make runs in.
        let depfile = "obj/conf_1/cli.o: cli.c fileio.h \\\n ../lib/zstd.h\nfileio.h:\n";
        assert!(untracked(&old, &new, &[("z/programs/obj/conf_1/cli.d", depfile)]).is_empty());
        // Lua's hand-written rules, with continuation lines.
        let old = [
            ("l/src/lapi.c", "#include \"lua.h\"\n"),
            ("l/src/lua.h", "1"),
        ];
        let new = [
            ("l/src/lapi.c", "#include \"lua.h\"\n"),
            ("l/src/lua.h", "2"),
        ];
        let makefile =
            "CC= gcc\nlapi.o: lapi.c lprefix.h \\\n lua.h luaconf.h\n\t$(CC) -c lapi.c\n";
        let with = [("l/src/Makefile", makefile)];
        assert!(untracked(&old, &new, &with).is_empty());
        // A rule for a non-object target is no evidence: the objects may not depend on it.
        let doc_rule = "api.html: lua.h\n";
        assert_eq!(
            untracked(&old, &new, &[("l/src/Makefile", doc_rule)]),
            ["l/src/lua.h"]
        );
        // Order-only prerequisites trigger nothing either.
        let order_only = "lapi.o: lapi.c | lua.h\n";
        assert_eq!(
            untracked(&old, &new, &[("l/src/Makefile", order_only)]),
            ["l/src/lua.h"]
        );
        // A record naming another file of the same name elsewhere is no evidence.
        let elsewhere = "lapi.o: lapi.c other/lua.h\n";
        assert_eq!(
            untracked(&old, &new, &[("l/src/Makefile", elsewhere)]),
            ["l/src/lua.h"]
        );
        // Absolute paths below the build directory count.
        let absolute = "lapi.o: /build/l/src/lapi.c /build/l/src/lua.h\n";
        assert!(untracked(&old, &new, &[("l/src/.deps/lapi.Po", absolute)]).is_empty());
    }

    #[test]
    fn deleted_prerequisites_without_a_rule() {
        let missing = |products: &[(&str, &str)]| -> Vec<String> {
            let old = [("z/p/cli.c", "#include \"old.h\"\n"), ("z/p/old.h", "1")];
            let new = [("z/p/cli.c", "int main;\n")];
            tracking(&old, &new, products, false)
                .missing_prerequisites
                .iter()
                .map(|p| p.to_string())
                .collect()
        };
        // A depfile without -MP: make would stop on the missing header.
        assert_eq!(
            missing(&[("z/p/obj/cli.d", "obj/cli.o: cli.c old.h\n")]),
            ["z/p/old.h"]
        );
        // With -MP the header has an empty rule, and make goes on.
        assert!(missing(&[("z/p/obj/cli.d", "obj/cli.o: cli.c old.h\nold.h:\n")]).is_empty());
        // Named by no record: nothing to stop on.
        assert!(missing(&[]).is_empty());
    }

    #[test]
    fn an_included_compile_unit_needs_a_record() {
        // gnulib's regex.c includes regcomp.c.
        let old = [
            ("p/lib/regex.c", "#include \"regcomp.c\"\n"),
            ("p/lib/regcomp.c", "1"),
        ];
        let new = [
            ("p/lib/regex.c", "#include \"regcomp.c\"\n"),
            ("p/lib/regcomp.c", "2"),
        ];
        assert_eq!(untracked(&old, &new, &[]), ["p/lib/regcomp.c"]);
        let depfile = "lib/regex.o: lib/regex.c lib/regcomp.c\n";
        assert!(untracked(&old, &new, &[("p/lib/.deps/regex.Po", depfile)]).is_empty());
    }

    #[test]
    fn headers_included_nowhere_or_only_by_changed_units_are_seen() {
        // A new header used only by the changed file that now includes it.
        let old = [("p/a.c", "int a;\n"), ("p/b.c", "int b;\n")];
        let new = [
            ("p/a.c", "#include \"new.h\"\nint a;\n"),
            ("p/b.c", "int b;\n"),
            ("p/new.h", "#define N 1\n"),
        ];
        assert!(untracked(&old, &new, &[]).is_empty());
        // A header nothing includes.
        let old = [("p/a.c", "int a;\n"), ("p/unused.h", "1")];
        let new = [("p/a.c", "int a;\n"), ("p/unused.h", "2")];
        assert!(untracked(&old, &new, &[]).is_empty());
        // ... unless a computed include could name it.
        let old = [("p/a.c", "#include PLATFORM_H\n"), ("p/unused.h", "1")];
        let new = [("p/a.c", "#include PLATFORM_H\n"), ("p/unused.h", "2")];
        assert_eq!(untracked(&old, &new, &[]), ["p/unused.h"]);
        // A header an unchanged file includes is not covered by the changed one.
        let old = [
            ("p/a.c", "int a;\n"),
            ("p/b.c", "#include \"x.h\"\n"),
            ("p/x.h", "1"),
        ];
        let new = [
            ("p/a.c", "#include \"x.h\"\n"),
            ("p/b.c", "#include \"x.h\"\n"),
            ("p/x.h", "2"),
        ];
        assert_eq!(untracked(&old, &new, &[]), ["p/x.h"]);
    }

    #[test]
    fn generated_files_count_as_includers_and_other_files_are_left_to_make() {
        // The earlier build generated parse.c from parse.y; it includes tokens.def.
        let old = [("p/parse.y", "%{\n%}\n"), ("p/tokens.def", "1")];
        let new = [("p/parse.y", "%{\n%}\n"), ("p/tokens.def", "2")];
        let products = [("p/parse.c", "# include \"tokens.def\"\n")];
        assert_eq!(untracked(&old, &new, &products), ["p/tokens.def"]);
        // Documentation is make's business (its rules name it).
        let old = [("p/doc/hello.texi", "1")];
        let new = [("p/doc/hello.texi", "2")];
        assert!(untracked(&old, &new, &[]).is_empty());
    }

    #[test]
    fn include_directive_forms() {
        let text =
            b"#include <a/b.h>\n  #  include \"c.h\"\n#include_next <d.h>\n#import \"e.h\"\n\
            #embed \"logo.png\" limit(10)\n\
            .include \"f.inc\"\n\t.incbin \"g.bin\"\n#includes <no.h>\n// #include \"h.h\"\n\
            /*\n#include \"i.h\"\n*/\n";
        let mut names = Vec::new();
        let computed = include_directives(text, true, |n| {
            names.push(String::from_utf8_lossy(n).into_owned())
        });
        // A directive inside a block comment counts (erring toward "included" is safe); one
        // after `//` does not start a line with `#`.
        assert_eq!(
            names,
            ["b.h", "c.h", "d.h", "e.h", "logo.png", "f.inc", "g.bin", "i.h"]
        );
        assert!(!computed);
        assert!(include_directives(b"#include FOO\n", true, |_| {}));
        assert!(include_directives(
            b"#include \"unterminated\n",
            true,
            |_| {}
        ));
    }

    /// The names and the computed flag [`include_directives`] gives for `text`.
    fn directives_of(text: &str, c_comments: bool) -> (Vec<String>, bool) {
        let mut names = Vec::new();
        let computed = include_directives(text.as_bytes(), c_comments, |n| {
            names.push(String::from_utf8_lossy(n).into_owned())
        });
        (names, computed)
    }

    #[test]
    fn computed_includes_in_comments_do_not_count() {
        let no_names = |text: &str| directives_of(text, true) == (vec![], false);
        // Inside block comments, on their first, middle or last line.
        assert!(no_names("/*\n #include this file last\n */\n"));
        assert!(no_names("/* #include MACRO */\n"));
        assert!(no_names("/* a\n#include MACRO */ int x;\n"));
        // `/*/` opens a comment and does not close it.
        assert!(no_names("int x; /*/ a\n#include MACRO\n*/\n"));
        assert!(no_names("/*/ a\n#include MACRO\n*/\n"));
        // After `//`, and on a line a `//` comment continues onto (backslash-newline).
        assert!(no_names("int x; // #include MACRO\n"));
        assert!(no_names("// a comment \\\n#include MACRO\n"));
        assert!(no_names("// a comment \\\r\n#include MACRO\n"));
        // Real ones: after a comment ends, after a comment on its own line, and one that
        // a comment precedes on the line, as the preprocessor reads it.
        assert_eq!(
            directives_of("/* x */\n#include MACRO\n", true),
            (vec![], true)
        );
        assert_eq!(
            directives_of("/* x */ #include MACRO\n", true),
            (vec![], true)
        );
        assert_eq!(
            directives_of("/* x */ # include \"a.h\"\n", true).0,
            ["a.h"]
        );
        assert_eq!(
            directives_of("#include MACRO /* comment */\n", true),
            (vec![], true)
        );
        // Comment markers inside literals open nothing, including a literal continued onto
        // the next line.
        for text in [
            "char *s = \"/*\";\n#include MACRO\n",
            "char c = '/'; char d = '*';\n#include MACRO\n",
            "int a = '\"'; /* x */\n#include MACRO\n",
            "char *s = \"a \\\" /*\";\n#include MACRO\n",
            "char *s = \"a \\\nb /* \";\n#include MACRO\n",
        ] {
            assert_eq!(directives_of(text, true), (vec![], true), "{text}");
        }
        // A literal left open at the end of a line (a C++14 digit separator, an apostrophe
        // in `#error`) ends there.
        assert_eq!(
            directives_of("int n = 1'000;\n#include MACRO\n", true),
            (vec![], true)
        );
        // After a raw string literal comments are no longer told apart: everything counts.
        assert_eq!(
            directives_of("auto s = R\"(/*)\";\n#include MACRO\n", true),
            (vec![], true)
        );
        assert_eq!(
            directives_of("auto s = R\"(x)\";\n/*\n#include MACRO\n*/\n", true),
            (vec![], true)
        );
        // Without C comments (Fortran) every line counts.
        assert_eq!(
            directives_of("/*\n#include MACRO\n*/\n", false),
            (vec![], true)
        );
        assert!(!has_c_comments(b"p/a.f90") && has_c_comments(b"p/a.h"));
        // A named include inside a comment still counts, once.
        assert_eq!(
            directives_of("/*\n#include \"i.h\"\n*/\n#include \"j.h\" // x\n", true).0,
            ["i.h", "j.h"]
        );
    }

    #[test]
    fn ninja_deps_log() {
        let mut log = b"# ninjadeps\n".to_vec();
        log.extend_from_slice(&4u32.to_le_bytes());
        for p in [&b"foo.o"[..], b"../src/foo.h"] {
            let padded = p.len().div_ceil(4) * 4;
            log.extend_from_slice(&((padded + 4) as u32).to_le_bytes());
            log.extend_from_slice(p);
            log.resize(log.len() + padded - p.len(), 0);
            log.extend_from_slice(&0xdead_beefu32.to_le_bytes());
        }
        let mut paths = Vec::new();
        ninja_deps_paths(&log, |p| paths.push(p.to_vec()));
        assert_eq!(paths, [b"foo.o".to_vec(), b"../src/foo.h".to_vec()]);
        let old = [
            ("p/src/foo.c", "#include \"foo.h\"\n"),
            ("p/src/foo.h", "1"),
        ];
        let new = [
            ("p/src/foo.c", "#include \"foo.h\"\n"),
            ("p/src/foo.h", "2"),
        ];
        let mut contents = BTreeMap::new();
        let old_source = tree(&old, &mut contents);
        let new_source = tree(&new, &mut contents);
        let mut built = tree(&old, &mut contents);
        let e = file_entry(&log);
        contents.insert(file_hash(&e).unwrap(), log.clone());
        built.insert(RelPath::new(b"p/build".to_vec()).unwrap(), dir_entry());
        built.insert(RelPath::new(b"p/build/.ninja_deps".to_vec()).unwrap(), e);
        let read = |_: &RelPath, h: &ContentHash, _: bool| contents.get(h).cloned();
        let trees = Trees {
            old_source: &old_source,
            new_source: &new_source,
            built: &built,
            build_top: b"/build",
            forced_include_in_environment: false,
        };
        let tracking = untracked_changes(&overlay_diff(&old_source, &new_source), &trees, &read);
        assert!(tracking.untracked.is_empty());
    }

    #[test]
    fn compile_unit_names() {
        for p in ["a/b.c", "x.cpp", "y.S", "z.f90", "w.cc"] {
            assert!(is_compile_unit(p.as_bytes()), "{p}");
        }
        for p in ["a/b.h", "Makefile", ".c", "c", "x.o", "y.txt"] {
            assert!(!is_compile_unit(p.as_bytes()), "{p}");
        }
    }
}
