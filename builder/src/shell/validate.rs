//! Checks that a shell state read from a checkpoint (untrusted input, design §6) can be
//! restored without running anything it carries, beyond defining its functions and traps.
//!
//! Pure. [`load_state`] (or [`load_state_with`], for a checkpoint's layers in turn) is the one
//! way to read a stored state: it parses the JSON and the function text, then
//! [`validate_state`] checks every name that the restore code writes as a bare word
//! (variables, `shopt`/`set -o` options, functions, trap conditions), every value bash would
//! *evaluate* while declaring it (integers), every name reference, the traps and,
//! structurally, the function definitions ([`super::funcdef`]). Values are never checked for
//! content: the restore code quotes them ([`super::quote`]). A [`StateValidator`] makes the
//! same checks but lexes a function text it has seen pass only once.

use super::bytes::ByteString;
use super::declare::{is_identifier, Value, Variable};
use super::funcdef::{check_definitions, FunctionError};
use super::names::{is_function_name, is_set_option, is_shopt_option};
use super::state::{is_bash_owned, ShellState};
use super::traps::{parse_traps, TrapError};
use std::collections::BTreeSet;
use thiserror::Error;

/// Why a state may not be restored.
#[derive(Debug, Error)]
pub enum UnsafeState {
    #[error("variable name {0:?} is not a shell identifier")]
    VariableName(String),
    #[error("variable `{0}` belongs to bash and is never recorded")]
    BashOwned(String),
    #[error("variable `{0}` is declared twice")]
    DuplicateVariable(String),
    #[error(
        "integer variable `{name}` holds {value:?}, not a decimal integer (bash would evaluate it)"
    )]
    IntegerValue { name: String, value: String },
    #[error("name reference `{name}` points at {target:?}, not a variable name")]
    NamerefTarget { name: String, target: String },
    #[error("`shopt` option {0:?} is not one bash 5 has")]
    ShoptOption(String),
    #[error("`set -o` option {0:?} is not one bash 5 has")]
    SetOption(String),
    #[error("function name {0:?} is not accepted (letters, digits, `_ . : -`, not a reserved word or `builtin`)")]
    FunctionName(String),
    #[error("function `{0}` is listed twice")]
    DuplicateFunction(String),
    #[error(transparent)]
    Function(#[from] FunctionError),
    #[error(transparent)]
    Trap(#[from] TrapError),
    #[error("outer trap {0:?} is not DEBUG, RETURN or ERR")]
    OuterTrap(String),
}

/// Reading a stored state failed.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("unreadable JSON")]
    Json(#[source] serde_json::Error),
    #[error("unsafe to restore")]
    Unsafe(#[source] UnsafeState),
}

/// Parses a stored state (its JSON and its `declare -f` text) and validates it.
pub fn load_state(json: &[u8], functions: &[u8]) -> Result<ShellState, LoadError> {
    load_state_with(&mut StateValidator::default(), json, functions)
}

/// [`load_state`] for one of several states read in turn, validated by `validator`.
pub fn load_state_with(
    validator: &mut StateValidator,
    json: &[u8],
    functions: &[u8],
) -> Result<ShellState, LoadError> {
    let mut state: ShellState = serde_json::from_slice(json).map_err(LoadError::Json)?;
    state.functions = functions.to_vec().into();
    validator.validate(&state).map_err(LoadError::Unsafe)?;
    Ok(state)
}

/// Every check of this module; the first failure is returned.
pub fn validate_state(state: &ShellState) -> Result<(), UnsafeState> {
    check_state(state, true)
}

/// Validates states one after another (a checkpoint's layers), each as [`validate_state`]
/// does, but lexes a function text only when it differs from the last one that passed with
/// the same names: phases seldom define functions, so the layers of a build mostly share one,
/// and lexing it is most of a check's cost.
#[derive(Default)]
pub struct StateValidator {
    passed_definitions: Option<(ByteString, Vec<(String, bool)>)>,
}

impl StateValidator {
    pub fn validate(&mut self, state: &ShellState) -> Result<(), UnsafeState> {
        let passed = self
            .passed_definitions
            .as_ref()
            .is_some_and(|(text, names)| {
                *text == state.functions && *names == state.function_names
            });
        check_state(state, !passed)?;
        if !passed {
            self.passed_definitions = Some((state.functions.clone(), state.function_names.clone()));
        }
        Ok(())
    }
}

/// [`validate_state`], with the function definitions lexed only when `definitions` is set.
fn check_state(state: &ShellState, definitions: bool) -> Result<(), UnsafeState> {
    let mut seen = BTreeSet::new();
    for var in &state.variables {
        validate_variable(var)?;
        if !seen.insert(var.name.as_str()) {
            return Err(UnsafeState::DuplicateVariable(var.name.clone()));
        }
    }
    for (name, _) in &state.shopt_options {
        if !is_shopt_option(name) {
            return Err(UnsafeState::ShoptOption(name.clone()));
        }
    }
    for (name, _) in &state.set_options {
        if !is_set_option(name) {
            return Err(UnsafeState::SetOption(name.clone()));
        }
    }
    let mut seen = BTreeSet::new();
    for (name, _) in &state.function_names {
        if !is_function_name(name) {
            return Err(UnsafeState::FunctionName(name.clone()));
        }
        if !seen.insert(name.as_str()) {
            return Err(UnsafeState::DuplicateFunction(name.clone()));
        }
    }
    if definitions {
        check_definitions(
            state.functions.as_bytes(),
            state.function_names.iter().map(|(n, _)| n.as_str()),
        )?;
    }
    parse_traps(state.traps.as_bytes())?;
    for t in parse_traps(state.outer_traps.as_bytes())? {
        if !super::traps::is_frame_scoped(&t.condition) {
            return Err(UnsafeState::OuterTrap(t.condition));
        }
    }
    Ok(())
}

fn validate_variable(var: &Variable) -> Result<(), UnsafeState> {
    if !is_identifier(&var.name) {
        return Err(UnsafeState::VariableName(var.name.clone()));
    }
    if is_bash_owned(&var.name) {
        return Err(UnsafeState::BashOwned(var.name.clone()));
    }
    let a = &var.attributes;
    let values: Vec<&[u8]> = match &var.value {
        Value::Scalar(s) => vec![s.as_bytes()],
        Value::Indexed(e) => e.iter().map(|(_, v)| v.as_bytes()).collect(),
        Value::Assoc(e) => e.iter().map(|(_, v)| v.as_bytes()).collect(),
        Value::UnsetScalar | Value::UnsetIndexed | Value::UnsetAssoc => Vec::new(),
    };
    if a.integer {
        // `declare -i x=VALUE` evaluates VALUE arithmetically, and `a[$(cmd)]` there runs
        // cmd. Bash's own `declare -p` prints an integer variable's value as a number.
        for v in &values {
            if !is_decimal(v) {
                return Err(UnsafeState::IntegerValue {
                    name: var.name.clone(),
                    value: String::from_utf8_lossy(v).into_owned(),
                });
            }
        }
    }
    if a.nameref {
        for v in &values {
            if !is_nameref_target(v) {
                return Err(UnsafeState::NamerefTarget {
                    name: var.name.clone(),
                    target: String::from_utf8_lossy(v).into_owned(),
                });
            }
        }
    }
    Ok(())
}

/// `-?[0-9]+`, what bash prints for an integer variable.
fn is_decimal(v: &[u8]) -> bool {
    let digits = v.strip_prefix(b"-").unwrap_or(v);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// `NAME`, or `NAME[SUBSCRIPT]` with a subscript of letters, digits, `_`, `@`, `*`: a name
/// reference whose use can never expand anything.
fn is_nameref_target(v: &[u8]) -> bool {
    let Ok(v) = std::str::from_utf8(v) else {
        return false;
    };
    match v.split_once('[') {
        None => is_identifier(v),
        Some((name, rest)) => {
            is_identifier(name)
                && rest.strip_suffix(']').is_some_and(|sub| {
                    !sub.is_empty()
                        && sub
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'*'))
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::{Attributes, ByteString};

    fn var(name: &str, attributes: Attributes, value: Value) -> Variable {
        Variable {
            name: name.to_owned(),
            attributes,
            value,
        }
    }

    fn scalar(s: &str) -> Value {
        Value::Scalar(ByteString::from(s))
    }

    fn with_vars(vars: Vec<Variable>) -> ShellState {
        ShellState {
            variables: vars,
            ..ShellState::default()
        }
    }

    #[test]
    fn ordinary_state_passes() {
        let state = ShellState {
            variables: vec![
                var("PATH", Attributes::default(), scalar("/bin:$(not run)")),
                var(
                    "n",
                    Attributes {
                        integer: true,
                        ..Attributes::default()
                    },
                    scalar("-12"),
                ),
                var(
                    "ref",
                    Attributes {
                        nameref: true,
                        ..Attributes::default()
                    },
                    scalar("outputs[out]"),
                ),
            ],
            shopt_options: vec![("nullglob".into(), true), ("extglob".into(), false)],
            set_options: vec![
                ("errexit".into(), true),
                ("interactive-comments".into(), true),
            ],
            function_names: vec![("a".into(), false), ("b-c".into(), true)],
            functions: ByteString::from("a () \n{ \n    echo }a\n}\nb-c () \n{ \n    a\n}\n"),
            traps: ByteString::from("trap -- 'exitHandler' EXIT\ntrap -- '' SIGPIPE\n"),
            ..ShellState::default()
        };
        validate_state(&state).unwrap();
    }

    #[test]
    fn hostile_variables_are_refused() {
        let plain = Attributes::default;
        let int = || Attributes {
            integer: true,
            ..Attributes::default()
        };
        let nameref = || Attributes {
            nameref: true,
            ..Attributes::default()
        };
        let cases = vec![
            var("x=1;touch /tmp/PWNED;y", plain(), scalar("1")),
            var("x y", plain(), scalar("1")),
            var("", plain(), scalar("1")),
            var("1x", plain(), scalar("1")),
            var("a[$(id)]", plain(), scalar("1")),
            var("SHELLOPTS", plain(), scalar("xtrace")),
            var("BASHOPTS", plain(), scalar("extdebug")),
            var("n", int(), scalar("a[$(touch /tmp/PWNED)]")),
            var("n", int(), scalar("1+1")),
            var(
                "n",
                int(),
                Value::Indexed(vec![(0, ByteString::from("x[$(id)]"))]),
            ),
            var("r", nameref(), scalar("a[$(touch /tmp/PWNED)]")),
            var("r", nameref(), scalar("x;id")),
        ];
        for v in cases {
            let name = v.name.clone();
            assert!(validate_state(&with_vars(vec![v])).is_err(), "{name:?}");
        }
        let twice = with_vars(vec![
            var("PS1", plain(), scalar("a")),
            var("PS1", plain(), scalar("b")),
        ]);
        assert!(matches!(
            validate_state(&twice),
            Err(UnsafeState::DuplicateVariable(_))
        ));
    }

    #[test]
    fn hostile_options_and_names_are_refused() {
        let base = ShellState::default;
        let mut s = base();
        s.shopt_options = vec![("nullglob;touch /tmp/PWNED".into(), true)];
        assert!(matches!(
            validate_state(&s),
            Err(UnsafeState::ShoptOption(_))
        ));
        let mut s = base();
        s.set_options = vec![("errexit\ntouch /tmp/PWNED".into(), true)];
        assert!(matches!(validate_state(&s), Err(UnsafeState::SetOption(_))));
        let mut s = base();
        s.function_names = vec![("f;touch /tmp/PWNED".into(), true)];
        assert!(matches!(
            validate_state(&s),
            Err(UnsafeState::FunctionName(_))
        ));
        let mut s = base();
        s.function_names = vec![("f".into(), false), ("f".into(), true)];
        s.functions = ByteString::from("f () \n{ \n    :\n}\nf () \n{ \n    :\n}\n");
        assert!(matches!(
            validate_state(&s),
            Err(UnsafeState::DuplicateFunction(_))
        ));
        let mut s = base();
        s.function_names = vec![("f".into(), false)];
        s.functions = ByteString::from("f () \n{ \n    :\n}\ntouch /tmp/PWNED\n");
        assert!(matches!(validate_state(&s), Err(UnsafeState::Function(_))));
        let mut s = base();
        s.traps = ByteString::from("trap -- 'x' EXIT\ntouch /tmp/PWNED\n");
        assert!(matches!(validate_state(&s), Err(UnsafeState::Trap(_))));
        let mut s = base();
        s.outer_traps = ByteString::from("trap -- 'x' RETURN\ntouch /tmp/PWNED\n");
        assert!(matches!(validate_state(&s), Err(UnsafeState::Trap(_))));
        // Outer levels only ever hold the traps bash clears on entry to a function.
        let mut s = base();
        s.outer_traps = ByteString::from("trap -- 'x' EXIT\n");
        assert!(matches!(validate_state(&s), Err(UnsafeState::OuterTrap(_))));
        let mut s = base();
        s.outer_traps = ByteString::from("trap -- 'x' RETURN\ntrap -- 'y' DEBUG\n");
        assert!(validate_state(&s).is_ok());
    }

    #[test]
    fn load_state_refuses_what_validation_refuses() {
        let json = br#"{"variables":[{"name":"x=1;touch /tmp/PWNED;y","value":{"kind":"scalar","value":"1"}}],"export_order":[],"functions":"","function_names":[],"set_options":[],"shopt_options":[],"traps":"","cwd":"/","dir_stack":[],"umask":18,"limits":[]}"#;
        match load_state(json, b"") {
            Err(LoadError::Unsafe(UnsafeState::VariableName(n))) => {
                assert_eq!(n, "x=1;touch /tmp/PWNED;y")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(load_state(b"{", b""), Err(LoadError::Json(_))));
    }

    fn with_functions(text: &str, names: &[&str]) -> ShellState {
        ShellState {
            function_names: names.iter().map(|n| (n.to_string(), false)).collect(),
            functions: ByteString::from(text),
            ..ShellState::default()
        }
    }

    #[test]
    fn a_validator_lexes_a_function_text_again_unless_it_passed_with_the_same_names() {
        let safe = "f () \n{ \n    echo ok\n}\n";
        let unsafe_text = "f () \n{ \n    echo 'x\n}\ntouch /tmp/PWNED\n";
        let mut v = StateValidator::default();
        v.validate(&with_functions(safe, &["f"])).unwrap();
        // The same text and names: passed already.
        v.validate(&with_functions(safe, &["f"])).unwrap();
        // The same text under other names is lexed again, and refused.
        assert!(matches!(
            v.validate(&with_functions(safe, &["g"])),
            Err(UnsafeState::Function(_))
        ));
        // A refused text is never taken as passed.
        for _ in 0..2 {
            assert!(matches!(
                v.validate(&with_functions(unsafe_text, &["f"])),
                Err(UnsafeState::Function(_))
            ));
        }
        // The checks besides the definitions still run on a text that passed.
        let mut twice = with_functions(safe, &["f"]);
        twice.set_options = vec![("no-such-option".into(), true)];
        assert!(matches!(v.validate(&twice), Err(UnsafeState::SetOption(_))));
        v.validate(&with_functions(safe, &["f"])).unwrap();
    }

    /// Why builds validate a base's states again after moving them to this build's paths
    /// (`runner::safe_after_rewrites`): the earlier paths are the checkpoint's own claim, and
    /// replacing one that spans a quote turns safe text into a definition plus a command.
    #[test]
    fn a_safe_state_can_become_unsafe_when_paths_are_rewritten() {
        let state = ShellState {
            function_names: vec![("f".into(), false)],
            functions: ByteString::from(
                "f () \n{ \n    echo 'x\n}\ntouch /tmp/PWNED\nf2 () \n{ \n    x'\n}\n",
            ),
            ..ShellState::default()
        };
        validate_state(&state).unwrap();
        // "echo 'x" (7 bytes) claimed as the earlier build directory, "/build/" the new one.
        let moved = crate::reuse::plan::rewrite_state(
            &state,
            &[(b"echo 'x".to_vec(), b"/build/".to_vec())],
        );
        assert_ne!(moved.functions, state.functions);
        assert!(matches!(
            validate_state(&moved),
            Err(UnsafeState::Function(_))
        ));
    }
}
