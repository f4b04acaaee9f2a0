//! The variables `buildPhase` ends with on a resumed tree, against the earlier build's: a
//! value a phase derives from a changed one (a hook's `export FOO_VERSION=$version`, a
//! `makeFlagsArray+=(VERSION=$version)`) reaches the build tool without being a derivation
//! variable the rules judged, and neither make nor the compiler wrapper's environment is
//! tracked by anything, so products made with the earlier value would be kept. Pure: the
//! runner asks once `buildPhase` has run and falls back to a clean build on an answer.
//!
//! The rule (docs/keys.md): a variable whose value (output paths masked, as in the keys)
//! differs from the earlier build's after `buildPhase` must be one whose change the rules
//! already judged (a derivation variable that changed, the plan's; a source variable; a
//! moved `SOURCE_DATE_EPOCH`, whose renderings are searched for; the working directory and
//! `sourceRoot` of a renamed source root; one that never says anything about the result,
//! [`crate::reuse::keys::VOLATILE`]), or one the build tool cannot see: not exported, and not
//! named in the code `buildPhase` runs (its code, `preBuild`, `postBuild`, their hook arrays,
//! and the functions these name, followed through the functions they name in turn), where it
//! could reach the build tool's command line. The stdenv's own scratch variables
//! (`CONFIGURE_MTIME_REFERENCE`, a `mktemp` name of configurePhase) differ in every build and
//! are neither.
//!
//! A changed derivation variable the rules accepted because no makefile reads it (`name`,
//! `version`) reaches the build tool all the same when that code expands it (`make
//! VERSION=$version`, or a variable a hook sets from it and unsets before `buildPhase` ends,
//! which the state does not show): [`expanded_in_build_code`] finds those expansions, before
//! the resume (the rules refuse to rerun) and again once `buildPhase` has run.

use crate::reuse::keys::{phase_code, CONTROLS, VOLATILE};
use crate::reuse::plan::{changed_variables, SOURCE_VARIABLES};
use crate::shell::declare::Value;
use crate::shell::state::split_functions;
use crate::shell::ShellState;
use std::collections::BTreeSet;

/// What the state after `buildPhase` is compared with.
#[derive(Debug, Clone)]
pub struct EnvironmentCheck {
    /// Index (in the phase list) of `buildPhase`.
    pub build_phase: usize,
    /// The earlier build's state after `buildPhase`, as recorded.
    pub earlier: ShellState,
    /// The earlier build's output paths (masked in the comparison).
    pub earlier_outputs: Vec<Vec<u8>>,
    /// The names whose change the rules judged.
    pub judged: BTreeSet<String>,
    /// The changed derivation variables judged only by what the build tool reads: the code
    /// `buildPhase` runs must not expand them.
    pub watched: BTreeSet<String>,
}

/// Why the state after `buildPhase` rules out what was kept ([`EnvironmentCheck::unjudged`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unjudged {
    /// Variables that differ from the earlier build's, unjudged, where the build tool may see
    /// them.
    pub differing: Vec<String>,
    /// Changed variables the code `buildPhase` ran expands.
    pub expanded: Vec<String>,
}

impl Unjudged {
    pub fn is_empty(&self) -> bool {
        self.differing.is_empty() && self.expanded.is_empty()
    }
}

impl EnvironmentCheck {
    /// `judged` is the plan's changed variables; `epoch_moved` and `root_renamed` add
    /// `SOURCE_DATE_EPOCH` and the renamed root's variables.
    pub fn new(
        build_phase: usize,
        earlier: ShellState,
        earlier_outputs: Vec<Vec<u8>>,
        judged: &BTreeSet<String>,
        epoch_moved: bool,
        root_renamed: bool,
    ) -> EnvironmentCheck {
        let tracked = tracked_elsewhere(epoch_moved, root_renamed);
        let watched = judged.difference(&tracked).cloned().collect();
        let judged = judged.union(&tracked).cloned().collect();
        EnvironmentCheck {
            build_phase,
            earlier,
            earlier_outputs,
            judged,
            watched,
        }
    }

    /// What of `after_build` (this build's state after `buildPhase`, with output paths
    /// `outputs`) rules out the kept products: variables that differ from the earlier build's
    /// unjudged where the build tool may see them, and watched ones its code expands.
    pub fn unjudged(&self, after_build: &ShellState, outputs: &[Vec<u8>]) -> Unjudged {
        let code = build_code(after_build);
        let exported =
            |s: &ShellState, n: &str| s.variable(n).is_some_and(|v| v.attributes.exported);
        let differing =
            changed_variables(&self.earlier, &self.earlier_outputs, after_build, outputs)
                .into_iter()
                .filter(|n| !self.judged.contains(n))
                .filter(|n| {
                    exported(&self.earlier, n)
                        || exported(after_build, n)
                        || code.iter().any(|text| names_word(text, n.as_bytes()))
                })
                .collect();
        Unjudged {
            differing,
            expanded: expanded_in(&code, &self.watched),
        }
    }
}

/// The variables whose change a rule other than the build tool's own tracking follows: the
/// source (its effect is the tree), the volatile ones and the builder's controls, a moved
/// `SOURCE_DATE_EPOCH` (its renderings are searched for in the products) and a renamed
/// root's working directory (the tree is moved).
fn tracked_elsewhere(epoch_moved: bool, root_renamed: bool) -> BTreeSet<String> {
    let always = SOURCE_VARIABLES.iter().chain(VOLATILE).chain(CONTROLS);
    let mut tracked: BTreeSet<String> = always.map(|s| s.to_string()).collect();
    if epoch_moved {
        tracked.insert("SOURCE_DATE_EPOCH".into());
    }
    if root_renamed {
        tracked.extend(["sourceRoot", "PWD", "OLDPWD"].map(String::from));
    }
    tracked
}

/// Which of `changed` (variables that differ from the earlier build's, output paths masked)
/// the code `buildPhase` runs in `state` expands, leaving out those whose change
/// `tracked_elsewhere` follows. Such a value reaches make's or the compiler's command line,
/// or a variable set and unset within the phase, where no build tool tracks it.
pub fn expanded_in_build_code(
    state: &ShellState,
    changed: &BTreeSet<String>,
    epoch_moved: bool,
    root_renamed: bool,
) -> Vec<String> {
    let watched = changed
        .difference(&tracked_elsewhere(epoch_moved, root_renamed))
        .cloned()
        .collect();
    expanded_in(&build_code(state), &watched)
}

fn expanded_in(code: &[Vec<u8>], names: &BTreeSet<String>) -> Vec<String> {
    names
        .iter()
        .filter(|n| {
            code.iter()
                .any(|text| expands(text, n.as_bytes()) && !declares_local(text, n.as_bytes()))
        })
        .cloned()
        .collect()
}

/// The code `buildPhase` runs in `state`: the phase's code, the `preBuild` and `postBuild`
/// hooks (variables and arrays), and the text of each function a word of these names, and of
/// each function a word of those names, and so on.
fn build_code(state: &ShellState) -> Vec<Vec<u8>> {
    let mut texts = vec![phase_code(state, "buildPhase")];
    for hook in ["preBuild", "postBuild", "preBuildHooks", "postBuildHooks"] {
        match state.variable(hook).map(|v| &v.value) {
            Some(Value::Scalar(s)) => texts.push(s.as_bytes().to_vec()),
            Some(Value::Indexed(items)) => {
                texts.extend(items.iter().map(|(_, s)| s.as_bytes().to_vec()))
            }
            _ => {}
        }
    }
    let mut functions = split_functions(state.functions.as_bytes(), &state.function_names);
    // Each round takes the functions the texts so far name; every function is taken once.
    loop {
        let (called, rest): (Vec<_>, Vec<_>) = functions
            .into_iter()
            .partition(|(f, _)| texts.iter().any(|t| names_word(t, f.as_bytes())));
        functions = rest;
        if called.is_empty() {
            return texts;
        }
        texts.extend(called.into_iter().map(|(_, text)| text.to_vec()));
    }
}

/// Whether `text` expands the variable `name`: `$name` (not a longer name) or `${name…}`,
/// `${#name…}`, `${!name…}`.
fn expands(text: &[u8], name: &[u8]) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    !name.is_empty()
        && memchr::memchr_iter(b'$', text).any(|i| {
            let rest = &text[i + 1..];
            let inner = match rest.strip_prefix(b"{") {
                Some(r) => r.strip_prefix(b"#").or(r.strip_prefix(b"!")).unwrap_or(r),
                None => rest,
            };
            inner.starts_with(name) && inner.get(name.len()).is_none_or(|&b| !word(b))
        })
}

/// Whether `text` declares `name` as a local of its function (`local`, `declare`,
/// `typeset` naming it, with or without a value), so that its expansions there are not the
/// variable's.
fn declares_local(text: &[u8], name: &[u8]) -> bool {
    text.split(|&b| b == b'\n' || b == b';')
        .map(|statement| {
            statement
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
        })
        .any(|mut words| {
            matches!(words.next(), Some(b"local" | b"declare" | b"typeset"))
                && words.any(|w| {
                    w.strip_prefix(name)
                        .is_some_and(|r| r.is_empty() || r[0] == b'=' || r[0] == b'[')
                })
        })
}

/// Whether `text` holds `name` as a whole word (not inside a longer name).
fn names_word(text: &[u8], name: &[u8]) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if name.is_empty() {
        return false;
    }
    // Every occurrence, overlapping ones included (`a-a` is a word of `xa-a-a` at 3, not 1).
    let finder = memchr::memmem::Finder::new(name);
    let mut from = 0;
    while let Some(found) = finder.find(&text[from..]) {
        let i = from + found;
        if (i == 0 || !word(text[i - 1])) && text.get(i + name.len()).is_none_or(|&b| !word(b)) {
            return true;
        }
        from = i + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::declare::{Attributes, Value, Variable};

    fn state(vars: &[(&str, &str, bool)]) -> ShellState {
        let mut s = ShellState::default();
        for (name, value, exported) in vars {
            s.variables.push(Variable {
                name: name.to_string(),
                attributes: Attributes {
                    exported: *exported,
                    ..Attributes::default()
                },
                value: Value::Scalar(value.as_bytes().to_vec().into()),
            });
        }
        s.variables.sort_by(|a, b| a.name.cmp(&b.name));
        s
    }

    fn with_prefix(mut s: ShellState, path: &[u8]) -> ShellState {
        s.variables.push(Variable {
            name: "prefix".into(),
            attributes: Attributes {
                exported: true,
                ..Attributes::default()
            },
            value: Value::Scalar(path.to_vec().into()),
        });
        s.variables.sort_by(|a, b| a.name.cmp(&b.name));
        s
    }

    const OLD_OUT: &[u8] = b"/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-pkg-1.0";
    const NEW_OUT: &[u8] = b"/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-pkg-1.1";

    fn check(judged: &[&str], epoch_moved: bool, root_renamed: bool) -> EnvironmentCheck {
        let earlier = state(&[
            ("out", std::str::from_utf8(OLD_OUT).unwrap(), true),
            ("version", "1.0", true),
            ("FOO_VERSION", "1.0", true),
            ("makeFlagsArray", "VERSION=1.0", false),
            ("scratch", "/build/tmp.1", false),
            ("buildPhase", "make \"${makeFlagsArray[@]}\"", false),
            ("SOURCE_DATE_EPOCH", "1600000000", true),
            ("PWD", "/build/pkg-1.0", true),
            ("NIX_BUILD_CORES", "2", true),
            ("curSrc", "/nix/store/x-src", false),
        ]);
        let judged = judged.iter().map(|s| s.to_string()).collect();
        EnvironmentCheck::new(
            5,
            earlier,
            vec![OLD_OUT.to_vec()],
            &judged,
            epoch_moved,
            root_renamed,
        )
    }

    fn after(foo: &str, args: &str) -> ShellState {
        state(&[
            ("out", std::str::from_utf8(NEW_OUT).unwrap(), true),
            ("version", "1.1", true),
            ("FOO_VERSION", foo, true),
            ("makeFlagsArray", args, false),
            ("scratch", "/build/tmp.2", false),
            ("buildPhase", "make \"${makeFlagsArray[@]}\"", false),
            ("SOURCE_DATE_EPOCH", "1700000000", true),
            ("PWD", "/build/pkg-1.1", true),
            ("NIX_BUILD_CORES", "8", true),
            ("curSrc", "/nix/store/y-src", false),
        ])
    }

    #[test]
    fn a_value_derived_by_a_phase_is_unjudged_exported_or_not() {
        let c = check(&["version"], true, true);
        assert_eq!(
            c.unjudged(&after("1.1", "VERSION=1.1"), &[NEW_OUT.to_vec()])
                .differing,
            ["FOO_VERSION", "makeFlagsArray"]
        );
        assert!(c
            .unjudged(&after("1.0", "VERSION=1.0"), &[NEW_OUT.to_vec()])
            .is_empty());
    }

    #[test]
    fn a_shell_variable_buildphase_does_not_name_is_not_seen() {
        // `scratch` differs but is neither exported nor named where make could get it.
        let c = check(&["version"], true, true);
        let a = after("1.0", "VERSION=1.0");
        assert!(c.unjudged(&a, &[NEW_OUT.to_vec()]).is_empty());
        assert!(names_word(b"x=$scratch;", b"scratch"));
        assert!(!names_word(b"x=$scratch2 my_scratch", b"scratch"));
        // An occurrence inside a longer name, overlapping a whole one.
        assert!(names_word(b"xa-a-a", b"a-a"));
        assert!(!names_word(b"xa-a-ab", b"a-a"));
        assert!(names_word(b"scratch", b"scratch"));
        assert!(!names_word(b"", b"scratch"));
        assert!(!names_word(b"text", b""));
    }

    #[test]
    fn the_epoch_and_the_root_count_only_when_their_rules_ran() {
        let c = check(&["version"], false, false);
        assert_eq!(
            c.unjudged(&after("1.0", "VERSION=1.0"), &[NEW_OUT.to_vec()])
                .differing,
            ["PWD", "SOURCE_DATE_EPOCH"]
        );
    }

    #[test]
    fn a_moved_output_path_is_no_change() {
        let c = check(&["version"], true, true);
        let a = with_prefix(after("1.0", "VERSION=1.0"), NEW_OUT);
        let earlier = with_prefix(c.earlier.clone(), OLD_OUT);
        let c = EnvironmentCheck { earlier, ..c };
        assert!(c.unjudged(&a, &[NEW_OUT.to_vec()]).is_empty());
        // Another path is a change.
        let a = with_prefix(after("1.0", "VERSION=1.0"), b"/usr/local");
        assert_eq!(c.unjudged(&a, &[NEW_OUT.to_vec()]).differing, ["prefix"]);
    }

    fn with_var(mut s: ShellState, name: &str, value: &str) -> ShellState {
        s.variables.push(Variable {
            name: name.into(),
            attributes: Attributes::default(),
            value: Value::Scalar(value.as_bytes().to_vec().into()),
        });
        s.variables.sort_by(|a, b| a.name.cmp(&b.name));
        s
    }

    fn with_functions(mut s: ShellState, functions: &[(&str, &str)]) -> ShellState {
        for (name, body) in functions {
            s.functions
                .0
                .extend(format!("{name} () \n{{ \n    {body}\n}}\n").bytes());
            s.function_names.push((name.to_string(), false));
        }
        s
    }

    #[test]
    fn expansions_are_found_and_locals_are_not_the_variable() {
        for text in [
            "make VERSION=$version",
            "make VERSION=\"${version}\"",
            "v=${version%.*}",
            "n=${#version}",
            "x=\"$version\";",
        ] {
            assert!(expands(text.as_bytes(), b"version"), "{text}");
        }
        for text in [
            "make $versions",
            "${version_major}",
            "echo version",
            "$pversion",
        ] {
            assert!(!expands(text.as_bytes(), b"version"), "{text}");
        }
        // nixpkgs' concatTo reads the names it is given through a local `name`.
        let concat = b"local arg default name type;\nfor arg in \"$@\"; do\n  IFS== read -r name default <<< \"$arg\";\n  local -n nameref=\"$name\"";
        assert!(declares_local(concat, b"name"));
        assert!(declares_local(b"local name=x", b"name"));
        assert!(!declares_local(b"local x=$name; make X=$x", b"name"));
        assert!(!declares_local(b"echo local name", b"name"));
    }

    #[test]
    fn a_changed_variable_the_build_code_expands_is_unjudged() {
        let c = check(&["version"], true, true);
        let changed: BTreeSet<String> = ["version".to_string()].into();
        let a = after("1.0", "VERSION=1.0");
        assert!(expanded_in_build_code(&a, &changed, true, true).is_empty());
        // Set and unset within the phase: the state after it does not show the value.
        let hooked = |s: ShellState| {
            with_functions(
                s,
                &[
                    ("markHook", "setMark"),
                    ("setMark", "export MARK=$version; make; unset MARK"),
                ],
            )
        };
        let a = with_var(hooked(after("1.0", "VERSION=1.0")), "preBuild", "markHook");
        // Reached through two functions.
        assert_eq!(
            expanded_in_build_code(&a, &changed, true, true),
            ["version"]
        );
        let u = c.unjudged(&a, &[NEW_OUT.to_vec()]);
        assert_eq!(
            u,
            Unjudged {
                differing: vec![],
                expanded: vec!["version".into()]
            }
        );
        // What another rule follows is not watched: the source, a moved epoch.
        let changed: BTreeSet<String> = ["src".to_string(), "SOURCE_DATE_EPOCH".into()].into();
        let a = with_var(
            after("1.0", "VERSION=1.0"),
            "postBuild",
            "make SRC=$src DATE=$SOURCE_DATE_EPOCH",
        );
        assert!(expanded_in_build_code(&a, &changed, true, false).is_empty());
        assert_eq!(
            expanded_in_build_code(&a, &changed, false, false),
            ["SOURCE_DATE_EPOCH"]
        );
    }
}
