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
//! and the functions these name), where it could reach the build tool's command line. The
//! stdenv's own scratch variables (`CONFIGURE_MTIME_REFERENCE`, a `mktemp` name of
//! configurePhase) differ in every build and are neither.

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
        let mut judged = judged.clone();
        let always = SOURCE_VARIABLES.iter().chain(VOLATILE).chain(CONTROLS);
        judged.extend(always.map(|s| s.to_string()));
        if epoch_moved {
            judged.insert("SOURCE_DATE_EPOCH".into());
        }
        if root_renamed {
            judged.extend(["sourceRoot", "PWD", "OLDPWD"].map(String::from));
        }
        EnvironmentCheck {
            build_phase,
            earlier,
            earlier_outputs,
            judged,
        }
    }

    /// The variables of `after_build` (this build's state after `buildPhase`, with output
    /// paths `outputs`) that differ from the earlier build's unjudged, where the build tool
    /// may see them.
    pub fn unjudged_changes(&self, after_build: &ShellState, outputs: &[Vec<u8>]) -> Vec<String> {
        let code = build_code(after_build);
        let exported =
            |s: &ShellState, n: &str| s.variable(n).is_some_and(|v| v.attributes.exported);
        changed_variables(&self.earlier, &self.earlier_outputs, after_build, outputs)
            .into_iter()
            .filter(|n| !self.judged.contains(n))
            .filter(|n| {
                exported(&self.earlier, n)
                    || exported(after_build, n)
                    || code.iter().any(|text| names_word(text, n.as_bytes()))
            })
            .collect()
    }
}

/// The code `buildPhase` runs in `state`: the phase's code, the `preBuild` and `postBuild`
/// hooks (variables and arrays), and the text of each function a word of these names.
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
    let called: Vec<Vec<u8>> = split_functions(state.functions.as_bytes(), &state.function_names)
        .into_iter()
        .filter(|(f, _)| texts.iter().any(|t| names_word(t, f.as_bytes())))
        .map(|(_, text)| text.to_vec())
        .collect();
    texts.extend(called);
    texts
}

/// Whether `text` holds `name` as a whole word (not inside a longer name).
fn names_word(text: &[u8], name: &[u8]) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    !name.is_empty()
        && text.windows(name.len()).enumerate().any(|(i, w)| {
            w == name
                && (i == 0 || !word(text[i - 1]))
                && text.get(i + name.len()).is_none_or(|&b| !word(b))
        })
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
            c.unjudged_changes(&after("1.1", "VERSION=1.1"), &[NEW_OUT.to_vec()]),
            ["FOO_VERSION", "makeFlagsArray"]
        );
        assert!(c
            .unjudged_changes(&after("1.0", "VERSION=1.0"), &[NEW_OUT.to_vec()])
            .is_empty());
    }

    #[test]
    fn a_shell_variable_buildphase_does_not_name_is_not_seen() {
        // `scratch` differs but is neither exported nor named where make could get it.
        let c = check(&["version"], true, true);
        let a = after("1.0", "VERSION=1.0");
        assert!(c.unjudged_changes(&a, &[NEW_OUT.to_vec()]).is_empty());
        assert!(names_word(b"x=$scratch;", b"scratch"));
        assert!(!names_word(b"x=$scratch2 my_scratch", b"scratch"));
    }

    #[test]
    fn the_epoch_and_the_root_count_only_when_their_rules_ran() {
        let c = check(&["version"], false, false);
        assert_eq!(
            c.unjudged_changes(&after("1.0", "VERSION=1.0"), &[NEW_OUT.to_vec()]),
            ["PWD", "SOURCE_DATE_EPOCH"]
        );
    }

    #[test]
    fn a_moved_output_path_is_no_change() {
        let c = check(&["version"], true, true);
        let a = with_prefix(after("1.0", "VERSION=1.0"), NEW_OUT);
        let earlier = with_prefix(c.earlier.clone(), OLD_OUT);
        let c = EnvironmentCheck { earlier, ..c };
        assert!(c.unjudged_changes(&a, &[NEW_OUT.to_vec()]).is_empty());
        // Another path is a change.
        let a = with_prefix(after("1.0", "VERSION=1.0"), b"/usr/local");
        assert_eq!(c.unjudged_changes(&a, &[NEW_OUT.to_vec()]), ["prefix"]);
    }
}
