//! What a makefile rewritten by a rerun configure changes for make (issue 14): when the new
//! text differs from the earlier one in the values of variables (`VERSION = 1.1`, as
//! configure writes after a version bump) and in explicit rules (CMake's rules for a source
//! file added to a target), [`analyse`] names the targets make would keep although a clean
//! build makes them differently: those of every rule whose recipe, prerequisites or target
//! list refers to a changed variable, directly or through other variables, and those of
//! every rule that was added, removed or changed. The caller leaves those out of the tree
//! so make remakes them; anything this cannot follow is an [`Unfollowable`] reason, and the
//! build starts again from scratch as before. [`readers`] names the same targets in a
//! makefile whose text did not change but which reads values another one changed (make reads
//! included makefiles as one text). [`explicit_rules`] lists a makefile's rules for the order
//! of a release tarball's files (`working_copy::keep_source_order`).
//!
//! Pure: texts in, target names out. The make syntax read is the part configure-generated
//! makefiles use (automake's, CMake's, hand-written ones with `@VAR@` templates): logical
//! lines with `\` continuations, comments, assignments (`=`, `:=`, `::=`, `?=`, `+=`, `!=`,
//! `override`/`export` prefixes), `define` blocks, rules and their tab-indented recipes,
//! conditionals and includes. A reference is `$(NAME)`, `${NAME}`, `$N`, a substitution
//! reference `$(NAME:a=b)`, or the variable that `$(call NAME,…)`, `$(value NAME)`,
//! `$(origin NAME)` or `$(flavor NAME)` names.

use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// Why the changed makefile cannot be followed: the build starts again from scratch.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Unfollowable {
    #[error("lines other than variable values and explicit rules changed (line {line})")]
    NotOnlyValues { line: usize },
    #[error("the rule of {target} changed ({why})")]
    RuleChanged { target: String, why: &'static str },
    #[error("it computes variable names (`$($(…))`)")]
    ComputedName,
    #[error("{variable} is read by {place}")]
    ReadBy {
        variable: String,
        place: &'static str,
    },
    #[error("it exports every variable to its recipes")]
    ExportsAll,
    #[error("{variable} reaches the pattern, suffix or special rule {target}")]
    PatternRecipe { variable: String, target: String },
    #[error("{variable} is passed to a sub-make by the recipe of {target}")]
    SubMake { variable: String, target: String },
    #[error("the targets of a rule that reads {variable} cannot be worked out ({targets})")]
    TargetsUnknown { variable: String, targets: String },
}

/// What the changed values reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangedValues {
    /// The variables whose assignments changed (another value, added or removed).
    pub variables: Vec<String>,
    /// How many explicit rules changed (with their recipes), added or removed.
    pub rules: usize,
    /// Every variable whose value depends on one of them (them included).
    pub reaching: BTreeSet<String>,
    /// Targets (as the makefile names them, expanded) of the rules that read one of them:
    /// make would keep what an earlier build made for them.
    pub targets: BTreeSet<Vec<u8>>,
}

/// One logical line of a makefile.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line<'t> {
    Blank,
    Assignment {
        name: &'t [u8],
        op: &'t [u8],
        value: &'t [u8],
        exported: bool,
    },
    /// A `define NAME` … `endef` block: its name and body.
    Define {
        name: &'t [u8],
        body: &'t [u8],
    },
    Rule {
        targets: &'t [u8],
        rest: &'t [u8],
    },
    Recipe(&'t [u8]),
    /// `export NAMES` (true) or `unexport NAMES` (false); no names: every variable.
    Export(bool, &'t [u8]),
    /// Conditionals, includes, `vpath` and other directives: their whole text.
    Directive(&'t [u8]),
    /// Anything else (a top-level `$(eval …)`): its whole text.
    Other(&'t [u8]),
}

fn first_word(s: &[u8]) -> &[u8] {
    let s = s.trim_ascii();
    let end = s
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[..end]
}

/// The physical lines of `text` joined into logical ones (a `\` at the end continues a line),
/// each with the number of its first physical line. The text keeps its bytes; continuation
/// backslashes stay, as they do not change which variables a line refers to.
fn logical_lines(text: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut number = 1;
    let mut first_number = 1;
    let mut i = 0;
    while i <= text.len() {
        if i == text.len() || text[i] == b'\n' {
            let line = &text[start..i];
            // An odd number of trailing backslashes continues the line.
            let slashes = line.iter().rev().take_while(|&&b| b == b'\\').count();
            if slashes % 2 == 1 && i < text.len() {
                number += 1;
                i += 1;
                continue;
            }
            if !(i == text.len() && start == i) {
                out.push((first_number, line));
            }
            number += 1;
            first_number = number;
            start = i + 1;
        }
        i += 1;
    }
    out
}

/// The text before a comment (`#` not escaped), for lines other than recipes.
fn uncommented(line: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\\' => i += 2,
            b'#' => return &line[..i],
            _ => i += 1,
        }
    }
    line
}

/// Index of the first byte of `wanted` outside `$(…)`/`${…}` in `s`.
fn top_level(s: &[u8], wanted: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'(' | b'{' if i > 0 && (s[i - 1] == b'$' || depth > 0) => depth += 1,
            b')' | b'}' if depth > 0 => depth -= 1,
            _ if depth == 0 && wanted.contains(&b) => return Some(i),
            _ => {}
        }
    }
    None
}

const DIRECTIVES: &[&[u8]] = &[
    b"include",
    b"-include",
    b"sinclude",
    b"ifeq",
    b"ifneq",
    b"ifdef",
    b"ifndef",
    b"else",
    b"endif",
    b"vpath",
    b"undefine",
    b"load",
    b"-load",
];

/// Splits a makefile into logical lines and classifies them. Recipe lines are tab-indented
/// lines after a rule (a tab-indented line elsewhere is [`Line::Other`]).
fn parse(text: &[u8]) -> Vec<(usize, Line<'_>)> {
    let lines = logical_lines(text);
    let mut out = Vec::new();
    let mut in_rule = false;
    let mut i = 0;
    while i < lines.len() {
        let (number, raw) = lines[i];
        i += 1;
        if raw.first() == Some(&b'\t') && in_rule {
            out.push((number, Line::Recipe(&raw[1..])));
            continue;
        }
        let line = uncommented(raw);
        let content = line.trim_ascii();
        if content.is_empty() {
            // Blank and comment lines do not end a rule's recipe.
            out.push((number, Line::Blank));
            continue;
        }
        let word = first_word(content);
        let rest_after = |w: &[u8]| content[w.len()..].trim_ascii();
        let (exported, body) = match word {
            b"export" | b"override" | b"private" => (word == b"export", rest_after(word)),
            _ => (false, content),
        };
        if word == b"define" || first_word(body) == b"define" {
            let name_part = body[first_word(body).len()..].trim_ascii();
            let name = first_word(name_part);
            let start = lines.get(i).map(|(_, l)| *l);
            let mut end = i;
            while end < lines.len() && first_word(lines[end].1) != b"endef" {
                end += 1;
            }
            let body = match (start, lines.get(end.saturating_sub(1))) {
                (Some(first), Some((_, last))) if end > i => {
                    let from = first.as_ptr() as usize - text.as_ptr() as usize;
                    let to = last.as_ptr() as usize - text.as_ptr() as usize + last.len();
                    &text[from..to]
                }
                _ => b"".as_slice(),
            };
            out.push((number, Line::Define { name, body }));
            i = end + 1;
            in_rule = false;
            continue;
        }
        if word == b"export" || word == b"unexport" {
            let after = rest_after(word);
            if top_level(after, b"=").is_none() && top_level(after, b":").is_none() {
                out.push((number, Line::Export(word == b"export", after)));
                continue;
            }
        }
        if DIRECTIVES.contains(&word) {
            // Conditionals may stand among a rule's recipe lines without ending it.
            out.push((number, Line::Directive(content)));
            continue;
        }
        let colon_assignment =
            |s: &[u8]| s.starts_with(b":=") || s.starts_with(b"::=") || s.starts_with(b":::=");
        match top_level(body, b":=") {
            Some(at) if body[at] == b'=' || colon_assignment(&body[at..]) => {
                // An assignment: the operator is the `=` with what stands right before it.
                let eq = at + body[at..].iter().position(|&b| b == b'=').unwrap_or(0);
                let mut op_start = eq;
                while op_start > 0 && matches!(body[op_start - 1], b':' | b'?' | b'+' | b'!') {
                    op_start -= 1;
                }
                out.push((
                    number,
                    Line::Assignment {
                        name: body[..op_start].trim_ascii(),
                        op: &body[op_start..=eq],
                        value: body[eq + 1..].trim_ascii(),
                        exported,
                    },
                ));
                in_rule = false;
            }
            Some(at) => {
                out.push((
                    number,
                    Line::Rule {
                        targets: body[..at].trim_ascii(),
                        rest: &body[at + 1..],
                    },
                ));
                in_rule = true;
            }
            None => {
                out.push((number, Line::Other(content)));
                in_rule = false;
            }
        }
    }
    out
}

/// Make's functions (a reference `$(NAME args)` with one of these names is a call).
const FUNCTIONS: &[&str] = &[
    "subst",
    "patsubst",
    "strip",
    "findstring",
    "filter",
    "filter-out",
    "sort",
    "word",
    "wordlist",
    "words",
    "firstword",
    "lastword",
    "dir",
    "notdir",
    "suffix",
    "basename",
    "addsuffix",
    "addprefix",
    "join",
    "wildcard",
    "realpath",
    "abspath",
    "error",
    "warning",
    "info",
    "shell",
    "origin",
    "flavor",
    "foreach",
    "if",
    "or",
    "and",
    "intcmp",
    "call",
    "eval",
    "file",
    "value",
    "let",
    "guile",
];

/// The variables `text` refers to, or `Err(ComputedName)` for a reference whose name is
/// itself computed.
fn references(text: &[u8]) -> Result<BTreeSet<String>, Unfollowable> {
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i < text.len() {
        if text[i] != b'$' {
            i += 1;
            continue;
        }
        let Some(&next) = text.get(i + 1) else { break };
        match next {
            b'$' => i += 2,
            b'(' | b'{' => {
                let start = i + 2;
                if text.get(start) == Some(&b'$') {
                    return Err(Unfollowable::ComputedName);
                }
                let end = start
                    + text[start..]
                        .iter()
                        .position(|&b| {
                            matches!(b, b')' | b'}' | b':' | b',' | b'$') || b.is_ascii_whitespace()
                        })
                        .unwrap_or(text.len() - start);
                let name = String::from_utf8_lossy(&text[start..end]).into_owned();
                let is_call = text.get(end).is_some_and(|b| b.is_ascii_whitespace())
                    && FUNCTIONS.contains(&name.as_str());
                if is_call {
                    if matches!(name.as_str(), "call" | "value" | "origin" | "flavor") {
                        let arg = text[end..].trim_ascii();
                        if arg.first() == Some(&b'$') {
                            return Err(Unfollowable::ComputedName);
                        }
                        let stop = arg
                            .iter()
                            .position(|&b| {
                                matches!(b, b')' | b'}' | b',') || b.is_ascii_whitespace()
                            })
                            .unwrap_or(arg.len());
                        found.insert(String::from_utf8_lossy(&arg[..stop]).into_owned());
                    }
                } else {
                    found.insert(name);
                }
                // The arguments are scanned as they come.
                i = end;
            }
            c => {
                found.insert((c as char).to_string());
                i += 2;
            }
        }
    }
    Ok(found)
}

/// The first of `names` in `refs`.
fn first_in(refs: &BTreeSet<String>, names: &BTreeSet<String>) -> Option<String> {
    refs.intersection(names).next().cloned()
}

/// The most a rule's targets may expand to: a makefile from a checkpoint could nest
/// references to expand exponentially.
const EXPANSION_LIMIT: usize = 1 << 20;

/// Expands `text` with the makefile's variables (`values`, the last assignment of each,
/// `+=` appended), for rule targets. None when it needs anything else: a function, an
/// automatic variable, a variable it does not assign, or a depth or size beyond any real
/// makefile's.
#[cfg(test)]
fn expand(text: &[u8], values: &Values, depth: u32) -> Option<Vec<u8>> {
    let mut budget = EXPANSION_LIMIT;
    expand_within(text, values, depth, &mut budget)
}

fn expand_within(text: &[u8], values: &Values, depth: u32, budget: &mut usize) -> Option<Vec<u8>> {
    if depth > 32 {
        return None;
    }
    *budget = budget.checked_sub(text.len())?;
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] != b'$' {
            out.push(text[i]);
            i += 1;
            continue;
        }
        match *text.get(i + 1)? {
            b'$' => {
                out.push(b'$');
                i += 2;
            }
            open @ (b'(' | b'{') => {
                let close = if open == b'(' { b')' } else { b'}' };
                let len = text[i + 2..].iter().position(|&b| b == close)?;
                let name = &text[i + 2..i + 2 + len];
                if name.iter().any(|&b| {
                    matches!(b, b'$' | b':' | b',' | b'(' | b'{') || b.is_ascii_whitespace()
                }) {
                    return None;
                }
                // A variable the makefile does not assign is empty, as make has it (barring
                // the environment).
                match values.get(String::from_utf8_lossy(name).as_ref()) {
                    Some(Some(value)) => {
                        out.extend(expand_within(value, values, depth + 1, budget)?)
                    }
                    Some(None) => return None,
                    None => {}
                }
                i += 3 + len;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The targets written in a rule line (whitespace-separated, after expansion).
fn rule_targets(
    targets: &[u8],
    values: &Values,
    variable: &str,
    budget: &mut usize,
) -> Result<Vec<Vec<u8>>, Unfollowable> {
    let expanded =
        expand_within(targets, values, 0, budget).ok_or_else(|| Unfollowable::TargetsUnknown {
            variable: variable.to_owned(),
            targets: String::from_utf8_lossy(targets).into_owned(),
        })?;
    Ok(words(expanded))
}

/// The whitespace-separated words of an expanded list (a continuation, backslash and
/// newline, is a space to make).
fn words(mut text: Vec<u8>) -> Vec<Vec<u8>> {
    for i in 1..text.len() {
        if text[i] == b'\n' && text[i - 1] == b'\\' {
            text[i - 1] = b' ';
        }
    }
    text.split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_vec())
        .collect()
}

/// A pattern rule's or suffix rule's target (`%.o`, `.c.o`, `.c`): it stands for many files.
fn is_pattern(target: &[u8]) -> bool {
    if target.contains(&b'%') {
        return true;
    }
    let Some(rest) = target.strip_prefix(b".") else {
        return false;
    };
    // `.c.o` or `.c`, but not the special targets (upper case: `.PHONY`, `.SUFFIXES`).
    !rest.is_empty()
        && !rest.contains(&b'/')
        && !rest.iter().all(|b| b.is_ascii_uppercase() || *b == b'_')
        && rest.split(|&b| b == b'.').count() <= 2
}

/// Targets the GNU coding standards define for things a package build never asks for
/// (distribution, cleaning, tags, uninstall): a sub-make their recipe runs with a changed
/// value does not reach what the build produces.
fn is_maintainer_target(target: &[u8]) -> bool {
    let t = String::from_utf8_lossy(target);
    [
        "dist",
        "distclean",
        "maintainer-clean",
        "mostlyclean",
        "clean",
        "uninstall",
    ]
    .iter()
    .any(|p| t == *p || t.starts_with(&format!("{p}-")))
        || t.starts_with("distdir")
        || t == "distcheck"
        || matches!(
            t.as_ref(),
            "tags" | "ctags" | "TAGS" | "CTAGS" | "GTAGS" | "cscope" | "cscopelist"
        )
}

/// A rule line and its recipe lines.
type Block<'t> = Vec<&'t Line<'t>>;

/// A makefile taken apart for comparison.
struct Shape<'t> {
    /// The lines other than assignments, rules, recipes and blank lines, in order, with
    /// their line numbers: directives, exports, other lines.
    frame: Vec<(usize, &'t Line<'t>)>,
    /// Each variable's assignments, in order.
    assignments: BTreeMap<&'t [u8], Vec<&'t Line<'t>>>,
    /// Each rule with its recipe, by the frame line it follows, its target text and which
    /// occurrence of that text it is there.
    rules: BTreeMap<(usize, &'t [u8], usize), Block<'t>>,
    /// The names `.PHONY` rules list (a set: CMake writes one such rule per target).
    phony: BTreeSet<&'t [u8]>,
}

fn shape<'t>(lines: &'t [(usize, Line<'t>)]) -> Shape<'t> {
    let mut shape = Shape {
        frame: Vec::new(),
        assignments: BTreeMap::new(),
        rules: BTreeMap::new(),
        phony: BTreeSet::new(),
    };
    let mut seen: BTreeMap<(usize, &[u8]), usize> = BTreeMap::new();
    let mut current: Option<(usize, &[u8], usize)> = None;
    for (number, line) in lines {
        match line {
            Line::Blank => {}
            Line::Rule { targets, rest } if targets.trim_ascii() == b".PHONY" => {
                shape.phony.extend(
                    rest.split(|b| b.is_ascii_whitespace())
                        .filter(|w| !w.is_empty()),
                );
                current = None;
            }
            Line::Rule { targets, .. } => {
                let n = seen.entry((shape.frame.len(), targets)).or_default();
                let key = (shape.frame.len(), *targets, *n);
                *n += 1;
                shape.rules.insert(key, vec![line]);
                current = Some(key);
            }
            Line::Recipe(_) => {
                if let Some(block) = current.and_then(|k| shape.rules.get_mut(&k)) {
                    block.push(line);
                }
            }
            Line::Assignment { name, .. } | Line::Define { name, .. } => {
                shape.assignments.entry(name).or_default().push(line);
                current = None;
            }
            // Conditionals may stand among a rule's recipe lines.
            Line::Directive(_) => shape.frame.push((*number, line)),
            Line::Export(..) | Line::Other(_) => {
                shape.frame.push((*number, line));
                current = None;
            }
        }
    }
    shape
}

/// True for a recipe line that runs a sub-make.
fn is_sub_make(line: &[u8]) -> bool {
    line.windows(7).any(|w| w == b"$(MAKE)" || w == b"${MAKE}")
}

/// Special targets (`.PHONY`, `.SUFFIXES`, `.DEFAULT`, …) change how make reads the rest.
fn is_special(target: &[u8]) -> bool {
    target.len() > 1
        && target[0] == b'.'
        && target[1..]
            .iter()
            .all(|b| b.is_ascii_uppercase() || *b == b'_')
}

/// Adds to `targets` the targets of rules that changed (`changed`: earlier and new block),
/// each expanded with the variables of its own text; refuses a changed pattern, suffix or
/// special rule, and a new recipe line that runs a sub-make with assignments.
fn rules_changed(
    changed: &[(Option<&Block>, Option<&Block>)],
    (old_values, new_values): (&Values, &Values),
    budget: &mut usize,
    targets: &mut BTreeSet<Vec<u8>>,
) -> Result<(), Unfollowable> {
    for (old, new) in changed {
        for (block, values) in [(old, old_values), (new, new_values)] {
            let Some(block) = block else { continue };
            let Some(Line::Rule { targets: text, .. }) = block.first() else {
                continue;
            };
            let words =
                rule_targets(text, values, "", budget).map_err(|_| Unfollowable::RuleChanged {
                    target: String::from_utf8_lossy(text).into_owned(),
                    why: "its targets cannot be worked out",
                })?;
            // A new recipe line that runs a sub-make may pass it variables on its command line
            // (`$(MAKE) CFLAGS=-O2`), which the sub-make's own makefile does not show.
            let new_sub_make = new.is_some_and(|n| {
                n.iter().any(|l| match l {
                    Line::Recipe(r) if is_sub_make(r) && !old.is_some_and(|o| o.contains(l)) => {
                        expand_within(r, new_values, 0, budget)
                            .is_none_or(|line| line.contains(&b'='))
                    }
                    _ => false,
                })
            });
            for target in words {
                let name = || String::from_utf8_lossy(&target).into_owned();
                if is_pattern(&target) || is_special(&target) {
                    return Err(Unfollowable::RuleChanged {
                        target: name(),
                        why: "a pattern, suffix or special rule",
                    });
                }
                if new_sub_make && !is_maintainer_target(&target) {
                    return Err(Unfollowable::RuleChanged {
                        target: name(),
                        why: "its recipe runs a sub-make in a new way",
                    });
                }
                targets.insert(target);
            }
        }
    }
    Ok(())
}

/// Each variable's value, for expanding rule targets and prerequisites: None for one
/// assigned more than once.
type Values = BTreeMap<String, Option<Vec<u8>>>;

/// The assignments and `define` blocks of `lines`: (name, operator, value).
fn assignments_of<'l>(
    lines: &'l [(usize, Line<'l>)],
) -> impl Iterator<Item = (&'l [u8], &'l [u8], &'l [u8])> + 'l {
    lines.iter().filter_map(|(_, line)| match line {
        Line::Assignment {
            name, op, value, ..
        } => Some((*name, *op, *value)),
        Line::Define { name, body } => Some((*name, b"=".as_slice(), *body)),
        _ => None,
    })
}

/// Each variable's value as the makefile assigns it once (a `?=` after another assignment
/// changes nothing), None when assigned more than once; computed names are left out.
fn assigned_values(lines: &[(usize, Line<'_>)]) -> Values {
    let mut values: Values = BTreeMap::new();
    for (name, op, value) in assignments_of(lines) {
        if name.contains(&b'$') {
            continue;
        }
        let name = String::from_utf8_lossy(name).into_owned();
        // Assigned more than once: make expands a rule's targets and prerequisites with the
        // value at that point of the makefile, which this does not follow.
        let value = match values.get(&name) {
            None => Some(value.to_vec()),
            Some(_) if op == b"?=" => continue,
            Some(_) => None,
        };
        values.insert(name, value);
    }
    values
}

/// A rule's targets and the prerequisites whose mtimes make compares with them (order-only
/// ones left out), expanded.
pub type ExplicitRule = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// The rules of a makefile whose targets and prerequisites expand with its own variables
/// alone (others, and pattern and suffix rules, are left out), as written: relative to the
/// makefile's directory or absolute. automake's regeneration rules are among them
/// (`$(srcdir)/Makefile.in: $(srcdir)/Makefile.am $(am__configure_deps)`).
pub fn explicit_rules(text: &[u8]) -> Vec<ExplicitRule> {
    let lines = parse(text);
    let values = assigned_values(&lines);
    let mut budget = EXPANSION_LIMIT;
    let mut rules = Vec::new();
    for (_, line) in &lines {
        let Line::Rule { targets, rest } = line else {
            continue;
        };
        let rest = match top_level(rest, b";") {
            Some(i) => &rest[..i],
            None => rest,
        };
        if top_level(rest, b"=").is_some() {
            continue; // a target-specific variable
        }
        let rest = rest.strip_prefix(b":").unwrap_or(rest); // `::` rules
        let normal = match top_level(rest, b"|") {
            Some(i) => &rest[..i],
            None => rest,
        };
        let (Some(t), Some(p)) = (
            expand_within(targets, &values, 0, &mut budget),
            expand_within(normal, &values, 0, &mut budget),
        ) else {
            continue;
        };
        let (t, p) = (words(t), words(p));
        if t.iter().any(|t| is_pattern(t)) || p.is_empty() {
            continue;
        }
        rules.push((t, p));
    }
    rules
}

/// Compares a makefile's earlier text with the one a rerun configure wrote. `exported` are
/// the variables the build's environment exports (make exports to recipes a makefile
/// variable that came from the environment, with the makefile's value).
pub fn analyse(
    old: &[u8],
    new: &[u8],
    exported: &BTreeSet<String>,
) -> Result<ChangedValues, Unfollowable> {
    let (before, after) = (parse(old), parse(new));
    let (old_shape, new_shape) = (shape(&before), shape(&after));
    // The frame (directives, exports, other lines) must be the same, line for line.
    let frames = old_shape.frame.iter().zip(&new_shape.frame);
    if let Some((_, (line, _))) = frames.clone().find(|((_, a), (_, b))| a != b) {
        return Err(Unfollowable::NotOnlyValues { line: *line });
    }
    if old_shape.frame.len() != new_shape.frame.len() {
        let line = new_shape
            .frame
            .get(old_shape.frame.len())
            .or(old_shape.frame.get(new_shape.frame.len()))
            .map_or(0, |(n, _)| *n);
        return Err(Unfollowable::NotOnlyValues { line });
    }
    // Variables whose assignments differ (added, removed or another value).
    let mut changed: BTreeSet<String> = BTreeSet::new();
    for name in old_shape
        .assignments
        .keys()
        .chain(new_shape.assignments.keys())
    {
        if old_shape.assignments.get(name) != new_shape.assignments.get(name) {
            if name.contains(&b'$') {
                return Err(Unfollowable::ComputedName);
            }
            changed.insert(String::from_utf8_lossy(name).into_owned());
        }
    }
    // Explicit rules that differ: (earlier block, new block).
    let mut changed_rules: Vec<(Option<&Block>, Option<&Block>)> = Vec::new();
    for key in old_shape.rules.keys().chain(new_shape.rules.keys()) {
        let (a, b) = (old_shape.rules.get(key), new_shape.rules.get(key));
        if a != b && !changed_rules.iter().any(|(x, y)| (*x, *y) == (a, b)) {
            changed_rules.push((a, b));
        }
    }
    let mut result = ChangedValues {
        variables: changed.iter().cloned().collect(),
        rules: changed_rules.len(),
        ..ChangedValues::default()
    };
    // A name that became phony or stopped being so: whatever file has it is not what a
    // clean build would leave.
    let phony_changed: Vec<&&[u8]> = old_shape
        .phony
        .symmetric_difference(&new_shape.phony)
        .collect();
    if phony_changed.is_empty() && changed.is_empty() && changed_rules.is_empty() {
        return Ok(result);
    }
    result
        .targets
        .extend(phony_changed.iter().map(|t| t.to_vec()));
    let first_rule = |lines: &[(usize, Line<'_>)]| {
        lines.iter().find_map(|(_, l)| match l {
            Line::Rule { targets, .. } => Some(targets.to_vec()),
            _ => None,
        })
    };
    if !changed_rules.is_empty() && first_rule(&before) != first_rule(&after) {
        return Err(Unfollowable::RuleChanged {
            target: String::from_utf8_lossy(&first_rule(&after).unwrap_or_default()).into_owned(),
            why: "the first rule, make's default goal",
        });
    }
    // The values for expanding rule targets, and one bound for all the expansions together.
    let (old_values, values) = (assigned_values(&before), assigned_values(&after));
    let mut budget = EXPANSION_LIMIT;
    rules_changed(
        &changed_rules,
        (&old_values, &values),
        &mut budget,
        &mut result.targets,
    )?;
    reached(
        &after,
        (&old_values, &values),
        changed,
        exported,
        &mut budget,
        result,
    )
}

/// What a makefile makes from values that changed elsewhere (in a makefile it includes, or
/// one that includes it: make reads them as one): [`ChangedValues::targets`] are the
/// targets of its rules that read one of `changed`, directly or through its own variables,
/// which [`ChangedValues::reaching`] lists with them. Refused as [`analyse`] refuses the
/// same reads.
pub fn readers(
    text: &[u8],
    changed: &BTreeSet<String>,
    exported: &BTreeSet<String>,
) -> Result<ChangedValues, Unfollowable> {
    let lines = parse(text);
    let values = assigned_values(&lines);
    let mut budget = EXPANSION_LIMIT;
    reached(
        &lines,
        (&values, &values),
        changed.clone(),
        exported,
        &mut budget,
        ChangedValues::default(),
    )
}

/// The half of [`analyse`] that follows `changed` through the makefile `after` (with its
/// earlier and new values): the variables that read them, to a fixed point, and the targets
/// of the rules and target lists that read any of those, added to `result`.
fn reached(
    after: &[(usize, Line<'_>)],
    (old_values, values): (&Values, &Values),
    changed: BTreeSet<String>,
    exported: &BTreeSet<String>,
    budget: &mut usize,
    mut result: ChangedValues,
) -> Result<ChangedValues, Unfollowable> {
    // Every variable whose value reads a changed one, to a fixed point.
    let mut reaching = changed;
    let mut assignments: Vec<(String, BTreeSet<String>, bool)> = Vec::new();
    // Assignments to a computed name (CMake's `$(VERBOSE)MAKESILENT = -s`): what they read.
    let mut computed: Vec<BTreeSet<String>> = Vec::new();
    for (name, op, value) in assignments_of(after) {
        if name.contains(&b'$') {
            let mut reads = references(name)?;
            reads.extend(references(value)?);
            computed.push(reads);
            continue;
        }
        let name = String::from_utf8_lossy(name).into_owned();
        let runs_shell = op == b"!=" || value.windows(7).any(|w| w == b"$(shell");
        assignments.push((name, references(value)?, runs_shell));
    }
    // Who reads each name, walked from the changed ones: linear in the references.
    let mut readers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, refs, _) in &assignments {
        for r in refs {
            readers.entry(r.as_str()).or_default().push(name.as_str());
        }
    }
    let mut pending: Vec<String> = reaching.iter().cloned().collect();
    while let Some(name) = pending.pop() {
        for reader in readers.get(name.as_str()).into_iter().flatten() {
            if reaching.insert((*reader).to_owned()) {
                pending.push((*reader).to_owned());
            }
        }
    }
    // One that reads a changed value may assign any variable.
    if computed
        .iter()
        .any(|reads| first_in(reads, &reaching).is_some())
    {
        return Err(Unfollowable::ComputedName);
    }
    for (name, refs, runs_shell) in &assignments {
        if *runs_shell && (reaching.contains(name) || first_in(refs, &reaching).is_some()) {
            return Err(Unfollowable::ReadBy {
                variable: name.clone(),
                place: "a shell command run while make reads the makefile",
            });
        }
    }
    if let Some(v) = first_in(exported, &reaching) {
        return Err(Unfollowable::ReadBy {
            variable: v,
            place: "every recipe (it comes from the build's environment, so make exports it)",
        });
    }

    let mut rule_targets_text: &[u8] = b"";
    let mut rule_reads: Option<String> = None;
    let mut rules_reading: Vec<(&[u8], String, bool)> = Vec::new();
    let mut lists_reading: Vec<(&[u8], String)> = Vec::new();
    for (_, line) in after {
        match line {
            Line::Rule { targets, rest } => {
                if let Some(v) = rule_reads.take() {
                    rules_reading.push((rule_targets_text, v, false));
                }
                // A target list that reads a changed value names other files now: those it
                // named before and those it names now are all affected.
                if let Some(v) = first_in(&references(targets)?, &reaching) {
                    lists_reading.push((targets, v));
                }
                if targets
                    .split(|b| b.is_ascii_whitespace())
                    .any(|t| t == b".EXPORT_ALL_VARIABLES" || t == b".SECONDEXPANSION")
                {
                    return Err(Unfollowable::ExportsAll);
                }
                rule_targets_text = targets;
                rule_reads = first_in(&references(rest)?, &reaching);
                // A recipe on the rule line, after `;`.
                if rule_reads.is_some() && is_sub_make(rest) {
                    rules_reading.push((targets, rule_reads.take().unwrap_or_default(), true));
                }
            }
            Line::Recipe(text) => {
                if let Some(v) = first_in(&references(text)?, &reaching) {
                    let sub_make = is_sub_make(text);
                    rules_reading.push((rule_targets_text, v, sub_make));
                }
            }
            Line::Export(false, _) => {}
            Line::Export(true, names) => {
                if names.is_empty() {
                    return Err(Unfollowable::ExportsAll);
                }
                if let Some(v) = first_in(&references(names)?, &reaching).or_else(|| {
                    names
                        .split(|b| b.is_ascii_whitespace())
                        .map(|n| String::from_utf8_lossy(n).into_owned())
                        .find(|n| reaching.contains(n))
                }) {
                    return Err(Unfollowable::ReadBy {
                        variable: v,
                        place: "an export directive",
                    });
                }
            }
            Line::Assignment {
                name,
                exported: true,
                ..
            } if reaching.contains(String::from_utf8_lossy(name).as_ref()) => {
                return Err(Unfollowable::ReadBy {
                    variable: String::from_utf8_lossy(name).into_owned(),
                    place: "every recipe (the makefile exports it)",
                });
            }
            Line::Directive(text) | Line::Other(text) => {
                if let Some(v) = first_in(&references(text)?, &reaching) {
                    return Err(Unfollowable::ReadBy {
                        variable: v,
                        place: "a directive or a line make evaluates as it reads",
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(v) = rule_reads.take() {
        rules_reading.push((rule_targets_text, v, false));
    }
    for (targets, variable) in lists_reading {
        for values in [old_values, values] {
            for target in rule_targets(targets, values, &variable, budget)? {
                if is_pattern(&target) || is_special(&target) {
                    return Err(Unfollowable::ReadBy {
                        variable,
                        place: "the target list of a pattern, suffix or special rule",
                    });
                }
                result.targets.insert(target);
            }
        }
    }
    for (targets, variable, sub_make) in rules_reading {
        for target in rule_targets(targets, values, &variable, budget)? {
            if is_pattern(&target) || is_special(&target) {
                return Err(Unfollowable::PatternRecipe {
                    variable,
                    target: String::from_utf8_lossy(&target).into_owned(),
                });
            }
            if sub_make && !is_maintainer_target(&target) {
                return Err(Unfollowable::SubMake {
                    variable,
                    target: String::from_utf8_lossy(&target).into_owned(),
                });
            }
            result.targets.insert(target);
        }
    }
    result.reaching = reaching;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Makefile automake 1.16 and configure wrote for a three-file program with a config
    /// header (`tests/reuse-cases/autotools-project.nix` at version 1.0).
    const AUTOMAKE: &str = include_str!("testdata/automake-Makefile");

    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }

    fn targets(c: &ChangedValues) -> Vec<String> {
        c.targets
            .iter()
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .collect()
    }

    #[test]
    fn an_automake_version_bump_reaches_only_distribution_targets() {
        let new = AUTOMAKE
            .replace("PACKAGE_STRING = atdemo 1.0", "PACKAGE_STRING = atdemo 1.1")
            .replace("PACKAGE_VERSION = 1.0", "PACKAGE_VERSION = 1.1")
            .replace("\nVERSION = 1.0", "\nVERSION = 1.1");
        let c = analyse(AUTOMAKE.as_bytes(), new.as_bytes(), &none()).unwrap();
        assert_eq!(
            c.variables,
            ["PACKAGE_STRING", "PACKAGE_VERSION", "VERSION"]
        );
        assert!(c.reaching.contains("distdir") && c.reaching.contains("DIST_ARCHIVES"));
        let t = targets(&c);
        assert!(
            t.contains(&"dist-gzip".to_owned()) && t.contains(&"distcheck".to_owned()),
            "{t:?}"
        );
        assert!(
            t.iter().all(|t| is_maintainer_target(t.as_bytes())),
            "a target the build makes: {t:?}"
        );
        // The same values reaching the compile command (no config header: DEFS carries them)
        // reach automake's suffix rule, which stands for every object.
        let defs = |v: &str| {
            AUTOMAKE.replace(
                "DEFS = -DHAVE_CONFIG_H",
                &format!("DEFS = -DPACKAGE_VERSION=\\\"{v}\\\""),
            )
        };
        assert!(matches!(
            analyse(defs("1.0").as_bytes(), defs("1.1").as_bytes(), &none()),
            Err(Unfollowable::PatternRecipe { variable, target })
                if (variable == "DEFS" || variable == "COMPILE") && target == ".c.o"
        ));
    }

    #[test]
    fn an_explicit_rule_that_reads_a_changed_value_names_its_target() {
        let text = |flags: &str| {
            format!(
                "CFLAGS = {flags}\nCC = gcc\nALL = $(CC) \\\n  $(CFLAGS)\nobjs = util.o main.o\n\n\
                 prog: $(objs)\n\t$(CC) -o $@ $(objs)\n\nutil.o: util.c\n\t$(ALL) -c util.c\n\n\
                 main.o: main.c\n\t$(CC) -c main.c # $(CFLAGS) in a shell comment\n\
                 data.h: data.txt ; sed s/x/$(CFLAGS)/ $< > $@\n"
            )
        };
        let c = analyse(text("-O1").as_bytes(), text("-O2").as_bytes(), &none()).unwrap();
        assert_eq!(c.variables, ["CFLAGS"]);
        // A `#` in a recipe goes to the shell: make still expands what follows it.
        assert_eq!(targets(&c), ["data.h", "main.o", "util.o"]);
    }

    #[test]
    fn what_make_reads_but_no_rule_names_is_refused() {
        let refused = |old: &str, new: &str, exported: &[&str]| {
            let exported = exported.iter().map(|s| s.to_string()).collect();
            analyse(old.as_bytes(), new.as_bytes(), &exported).unwrap_err()
        };
        let line = |old: &str, new: &str| refused(old, new, &[]);
        assert_eq!(
            line("V = 1\ninclude a.mk\n", "V = 1\ninclude b.mk\n"),
            Unfollowable::NotOnlyValues { line: 2 }
        );
        assert_eq!(
            line("all: a\n", "all: a\nvpath %.c src\n"),
            Unfollowable::NotOnlyValues { line: 2 }
        );
        assert!(matches!(
            line("all: a\n%.o: %.c\n\tcc -c $<\n", "all: a\n%.o: %.c\n\tcc -O2 -c $<\n"),
            Unfollowable::RuleChanged { target, .. } if target == "%.o"
        ));
        assert!(matches!(
            line("all: a\n.SUFFIXES: .c\n", "all: a\n.SUFFIXES: .c .x\n"),
            Unfollowable::RuleChanged { target, .. } if target == ".SUFFIXES"
        ));
        assert!(matches!(
            line("all: a\n", "b: c\nall: a\n"),
            Unfollowable::RuleChanged { why, .. } if why.contains("default goal")
        ));
        assert!(matches!(
            line("all: a\n\techo\n", "all: a\n\techo\n\t$(MAKE) -C sub CFLAGS=-O2\n"),
            Unfollowable::RuleChanged { why, .. } if why.contains("sub-make")
        ));
        assert!(matches!(
            line(
                "F = X=1\nall: a\n\techo\n",
                "F = X=1\nall: a\n\techo\n\t$(MAKE) -C sub $(F)\n"
            ),
            Unfollowable::RuleChanged { why, .. } if why.contains("sub-make")
        ));
        assert!(matches!(
            line("V = 1\nifeq ($(V),1)\nX = y\nendif\n", "V = 2\nifeq ($(V),1)\nX = y\nendif\n"),
            Unfollowable::ReadBy { variable, .. } if variable == "V"
        ));
        assert!(matches!(
            line(
                "V = 1\ninclude dir-$(V).mk\n",
                "V = 2\ninclude dir-$(V).mk\n"
            ),
            Unfollowable::ReadBy { .. }
        ));
        assert!(matches!(
            line("V = 1\n%-$(V).o: %.c\n", "V = 2\n%-$(V).o: %.c\n"),
            Unfollowable::ReadBy { place, .. } if place.contains("pattern")
        ));
        assert_eq!(
            line("V = 1\nX = $($(N)_V)\n", "V = 2\nX = $($(N)_V)\n"),
            Unfollowable::ComputedName
        );
        assert_eq!(
            line("V = 1\n$(V)X = 1\n", "V = 2\n$(V)X = 1\n"),
            Unfollowable::ComputedName
        );
        // A computed name that reads nothing changed (CMake's) is left alone.
        let quiet = "V = 1\n$(VERBOSE)MAKESILENT = -s\nall:\n\t$(MAKE) $(MAKESILENT) x\n";
        assert!(analyse(
            quiet.as_bytes(),
            quiet.replace("V = 1", "V = 2").as_bytes(),
            &none()
        )
        .is_ok());
        assert_eq!(
            line("V = 1\nexport\n", "V = 2\nexport\n"),
            Unfollowable::ExportsAll
        );
        assert!(matches!(
            line("V = 1\nexport V\n", "V = 2\nexport V\n"),
            Unfollowable::ReadBy { .. }
        ));
        assert!(matches!(
            line("export V = 1\n", "export V = 2\n"),
            Unfollowable::ReadBy { .. }
        ));
        assert!(matches!(
            line(
                "V = 1\nS := $(shell echo $(V))\n",
                "V = 2\nS := $(shell echo $(V))\n"
            ),
            Unfollowable::ReadBy { .. }
        ));
        // From the build's environment, make exports the makefile's value to every recipe.
        assert!(matches!(
            refused("NAME = a\n", "NAME = b\n", &["NAME"]),
            Unfollowable::ReadBy { variable, .. } if variable == "NAME"
        ));
        assert_eq!(
            line(
                "V = 1\nall:\n\t$(MAKE) -C sub V=$(V)\n",
                "V = 2\nall:\n\t$(MAKE) -C sub V=$(V)\n"
            ),
            Unfollowable::SubMake {
                variable: "V".into(),
                target: "all".into()
            }
        );
        assert!(matches!(
            line(
                "V = 1\n%.o: %.c\n\tcc -DV=$(V) -c $<\n",
                "V = 2\n%.o: %.c\n\tcc -DV=$(V) -c $<\n"
            ),
            Unfollowable::PatternRecipe { .. }
        ));
        assert!(matches!(
            line(
                "V = 1\n$(call f,x): y\n\techo $(V)\n",
                "V = 2\n$(call f,x): y\n\techo $(V)\n"
            ),
            Unfollowable::TargetsUnknown { .. }
        ));
    }

    #[test]
    fn automake_regeneration_rules_are_read_with_their_variables() {
        let rules = explicit_rules(AUTOMAKE.as_bytes());
        let rule = |target: &str| {
            rules
                .iter()
                .find(|(t, _)| t.iter().any(|t| t == target.as_bytes()))
                .map(|(_, p)| {
                    p.iter()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect::<Vec<_>>()
                })
        };
        assert_eq!(
            rule("./Makefile.in").unwrap(),
            ["./Makefile.am", "./configure.ac", "./aclocal.m4"]
        );
        assert_eq!(rule("./aclocal.m4").unwrap(), ["./configure.ac"]);
        assert_eq!(
            rule("./config.h.in").unwrap(),
            ["./configure.ac", "./aclocal.m4"]
        );
        assert!(rule("./configure").is_some());
        // Suffix rules stand for many files and are not listed.
        assert!(rule(".c.o").is_none());
    }

    #[test]
    fn nested_references_expand_within_a_bound() {
        let mut values = BTreeMap::new();
        values.insert("A0".to_owned(), Some(b"x".to_vec()));
        for i in 1..=30 {
            let r = format!("$(A{})", i - 1);
            values.insert(format!("A{i}"), Some(format!("{r}{r}").into_bytes()));
        }
        values.insert("TWICE".to_owned(), None);
        assert_eq!(expand(b"a $(TWICE)", &values, 0), None);
        assert_eq!(expand(b"a $(UNSET)b", &values, 0), Some(b"a b".to_vec()));
        assert_eq!(expand(b"$(A3)", &values, 0), Some(b"xxxxxxxx".to_vec()));
        assert_eq!(expand(b"$(A30)", &values, 0), None);
    }

    #[test]
    fn changed_explicit_rules_name_their_targets() {
        let c = |old: &str, new: &str| analyse(old.as_bytes(), new.as_bytes(), &none()).unwrap();
        let r = c("all: a\na: b\n\tcc\n", "all: a\na: c\n\tcc\n");
        assert_eq!((targets(&r), r.rules), (vec!["a".to_owned()], 1));
        let r = c(
            "all: a\nV = 1\na:\n\tcc\nb:\n\tcc\n",
            "all: a\nV = 1\na:\n\tcc -O2\nb:\n\tcc\n",
        );
        assert_eq!(targets(&r), ["a"]);
        // A rule added (a new object), one removed, and the link rule that lists them.
        let old = "all: prog\nOBJS = a.o \\\n b.o\nprog: a.o\nprog: b.o\n\tld -o $@ $(OBJS)\n\
                   a.o: a.c\n\tcc -c a.c\nb.o: b.c\n\tcc -c b.c\n";
        let new = "all: prog\nOBJS = a.o \\\n c.o\nprog: a.o\nprog: c.o\n\tld -o $@ $(OBJS)\n\
                   a.o: a.c\n\tcc -c a.c\nc.o: c.c\n\tcc -c c.c\n";
        let r = c(old, new);
        assert_eq!(r.variables, ["OBJS"]);
        assert_eq!(targets(&r), ["b.o", "c.o", "prog"]);
        // CMake's helper targets: phony, a sub-make with no variables on its command line.
        let r = c(
            "all: a\n.PHONY : all\n",
            "all: a\n.PHONY : all\nx.o:\n\t$(MAKE) -f build.make x.o\n.PHONY : x.o\n",
        );
        assert_eq!(targets(&r), ["x.o"]);
        // A target list that reads a changed value: what it named before and names now.
        let r = c(
            "all: x\nV = 1\nlib-$(V).a: x\n",
            "all: x\nV = 2\nlib-$(V).a: x\n",
        );
        assert_eq!(targets(&r), ["lib-1.a", "lib-2.a"]);
        // Added and removed variables are changed ones.
        assert_eq!(c("V = 1\n", "V = 1\nW = 2\n").variables, ["W"]);
        assert_eq!(c("V = 1\n", "V := 1.1\n").variables, ["V"]);
    }

    #[test]
    fn references_are_read_as_make_reads_them() {
        let refs = |t: &str| {
            references(t.as_bytes())
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(refs("$(A) ${B} $C $$(D) $(E:.c=.o)"), ["A", "B", "C", "E"]);
        assert_eq!(
            refs("$(subst a,b,$(F)) $(call G,1) $(value H)"),
            ["F", "G", "H"]
        );
        assert_eq!(refs("$@ $(@D) $<"), ["<", "@", "@D"]);
        assert_eq!(references(b"$(${X})"), Err(Unfollowable::ComputedName));
        assert_eq!(
            references(b"$(call $(f),1)"),
            Err(Unfollowable::ComputedName)
        );
    }

    #[test]
    fn unchanged_or_comment_only_texts_change_nothing() {
        let c = analyse(AUTOMAKE.as_bytes(), AUTOMAKE.as_bytes(), &none()).unwrap();
        assert!(c.variables.is_empty() && c.targets.is_empty());
        // A changed comment is a changed line of the file, not of make's reading of it.
        let c = analyse(b"# v1\nA = 1\n", b"# v2\nA = 1\n", &none()).unwrap();
        assert!(c.variables.is_empty());
        // `define` blocks are values too.
        let c = analyse(
            b"define BODY\necho 1\nendef\nout.txt: in\n\t$(BODY) > $@\n",
            b"define BODY\necho 2\nendef\nout.txt: in\n\t$(BODY) > $@\n",
            &none(),
        )
        .unwrap();
        assert_eq!(targets(&c), ["out.txt"]);
    }

    /// A makefile whose text did not change reads values another one changed (one it
    /// includes): the rules that read them, directly or through its own variables, are named;
    /// a pattern rule that reads one is refused as in [`analyse`].
    #[test]
    fn readers_of_values_changed_elsewhere_are_named() {
        let includer = b"include version.mk\nDEFS = -DV=$(VERSION)\nall: prog\n\
            prog: main.o util.o\n\t$(CC) -o $@ main.o util.o\n\
            util.o: util.c\n\t$(CC) -DVERSION='\"$(VERSION)\"' -c -o $@ util.c\n\
            main.o: main.c\n\t$(CC) $(DEFS) -c -o $@ main.c\n\
            other.o: other.c\n\t$(CC) -c -o $@ other.c\n";
        let changed: BTreeSet<String> = ["VERSION".to_owned()].into();
        let r = readers(includer, &changed, &none()).unwrap();
        assert_eq!(targets(&r), ["main.o", "util.o"]);
        assert!(r.reaching.contains("DEFS") && r.reaching.contains("VERSION"));
        assert!(r.variables.is_empty(), "no assignment of its own changed");
        let unrelated: BTreeSet<String> = ["PREFIX".to_owned()].into();
        assert!(readers(includer, &unrelated, &none())
            .unwrap()
            .targets
            .is_empty());
        let pattern = b"include version.mk\n%.o: %.c\n\t$(CC) -DV=$(VERSION) -c -o $@ $<\n";
        assert!(matches!(
            readers(pattern, &changed, &none()),
            Err(Unfollowable::PatternRecipe { .. })
        ));
        assert!(matches!(
            readers(includer, &changed, &changed),
            Err(Unfollowable::ReadBy { .. })
        ));
    }
}
