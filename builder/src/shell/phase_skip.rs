//! Phases the stdenv's own `runPhase` returns from at once (`checkPhase` without `doCheck`,
//! `distPhase` without `doDist`, …): recognised from the definition the state carries, so
//! the builder records them without starting a bash process (issue 19: each process costs
//! a state restore and a dump).
//!
//! Pure. Only a `runPhase` whose definition opens with the skip tests in one of the two
//! shapes below (as `declare -f` prints them) is recognised, and only when nothing else can
//! observe the call: no `DEBUG` or `RETURN` trap, neither `xtrace` nor `functrace`, and a
//! plain `curPhase` variable. Anything else runs the phase's process as before.
//!
//! - nixpkgs' chain: `local curPhase="$*";` then, per phase,
//!   `if [[ "$curPhase" = NAME && -n "${VAR:-}" ]]; then return; fi;` (or `-z`);
//! - a `case $curPhase in NAME) if [[ -n ${VAR-} ]]; then return 0; fi ;; … esac` after
//!   `local curPhase=$*;` (the test stdenv's).

use super::declare::{Attributes, Value, Variable};
use super::state::ShellState;
use super::traps::parse_traps;
use super::ByteString;

/// One skip test: `runPhase` returns at once for `phase` when `var` is non-empty
/// (`when_set`) or empty (`!when_set`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct SkipTest {
    phase: String,
    var: String,
    when_set: bool,
}

/// How `runPhase` picks the test that applies.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    /// Every test in order; the first true one for the phase returns.
    Chain(Vec<SkipTest>),
    /// The first arm naming the phase decides.
    Case(Vec<SkipTest>),
}

/// Whether [`skipped_phase_state`] shows that `runPhase PHASE` returns at once from
/// `state`, starting no process.
pub fn skips(state: &ShellState, phase: &str) -> bool {
    let shown = || -> Option<bool> {
        if !quiet(state) {
            return Some(false);
        }
        let cur = state.variable("curPhase");
        if cur.is_some_and(|v| v.attributes != Attributes::default()) {
            return Some(false);
        }
        let shape = parse_run_phase(state.function_text("runPhase")?)?;
        returns_at_once(&shape, phase, state)
    };
    shown().unwrap_or(false)
}

/// The state after `runPhase PHASE` when the stdenv's `runPhase` provably returns at once
/// (with status 0) and nothing else can observe the call: `state` with `curPhase` set to
/// `phase`, as stock's `genericBuild` loop leaves it. `None` when the phase would run, or
/// when that cannot be shown.
pub fn skipped_phase_state(state: &ShellState, phase: &str) -> Option<ShellState> {
    if !skips(state, phase) {
        return None;
    }
    let mut next = state.clone();
    let value = Value::Scalar(ByteString(phase.as_bytes().to_vec()));
    match next
        .variables
        .binary_search_by(|v| v.name.as_str().cmp("curPhase"))
    {
        Ok(i) => next.variables[i].value = value,
        Err(i) => next.variables.insert(
            i,
            Variable {
                name: "curPhase".into(),
                attributes: Attributes::default(),
                value,
            },
        ),
    }
    Some(next)
}

/// No trap or option would show the call: no `DEBUG`/`RETURN` trap at any level, no
/// `xtrace`, `functrace` or `verbose`.
fn quiet(state: &ShellState) -> bool {
    let on = |name: &str| {
        state
            .set_options
            .iter()
            .any(|(n, enabled)| n == name && *enabled)
    };
    if on("xtrace") || on("functrace") || on("verbose") {
        return false;
    }
    [&state.traps, &state.outer_traps].iter().all(|text| {
        parse_traps(text.as_bytes()).is_ok_and(|traps| {
            traps
                .iter()
                .all(|t| t.condition != "DEBUG" && t.condition != "RETURN")
        })
    })
}

/// Whether `runPhase` returns before doing anything for `phase`; `None` when a variable's
/// emptiness cannot be told (a nameref).
fn returns_at_once(shape: &Shape, phase: &str, state: &ShellState) -> Option<bool> {
    let (tests, first_only) = match shape {
        Shape::Chain(t) => (t, false),
        Shape::Case(t) => (t, true),
    };
    for test in tests.iter().filter(|t| t.phase == phase) {
        if non_empty(state.variable(&test.var))? == test.when_set {
            return Some(true);
        }
        if first_only {
            return Some(false);
        }
    }
    Some(false)
}

/// Whether `${VAR:-}` (or `${VAR-}`) expands to a non-empty word: element 0 of an array.
fn non_empty(var: Option<&Variable>) -> Option<bool> {
    let Some(var) = var else {
        return Some(false);
    };
    if var.attributes.nameref {
        return None;
    }
    Some(match &var.value {
        Value::Scalar(s) => !s.as_bytes().is_empty(),
        Value::Indexed(items) => items
            .iter()
            .any(|(i, s)| *i == 0 && !s.as_bytes().is_empty()),
        Value::Assoc(items) => items
            .iter()
            .any(|(k, s)| k.as_bytes() == b"0" && !s.as_bytes().is_empty()),
        Value::UnsetScalar | Value::UnsetIndexed | Value::UnsetAssoc => false,
    })
}

/// The skip tests `runPhase`'s definition opens with, in one of the known shapes.
fn parse_run_phase(text: &[u8]) -> Option<Shape> {
    let text = std::str::from_utf8(text).ok()?;
    let mut lines = text.lines().map(str::trim);
    if lines.next()? != "runPhase ()" || lines.next()? != "{" {
        return None;
    }
    let lines: Vec<&str> = lines.collect();
    match *lines.first()? {
        "local curPhase=\"$*\";" => parse_chain(&lines[1..]).map(Shape::Chain),
        "local curPhase=$*;" => parse_case(&lines[1..]).map(Shape::Case),
        _ => None,
    }
}

/// `if [[ "$curPhase" = NAME && -n "${VAR:-}" ]]; then` / `return;` / `fi;`, repeated; at
/// least one.
fn parse_chain(lines: &[&str]) -> Option<Vec<SkipTest>> {
    let mut tests = Vec::new();
    for triple in lines.chunks(3) {
        let [head, ret, end] = triple else { break };
        let Some(test) = chain_test(head) else { break };
        if *ret != "return;" || *end != "fi;" {
            return None;
        }
        tests.push(test);
    }
    (!tests.is_empty()).then_some(tests)
}

fn chain_test(line: &str) -> Option<SkipTest> {
    let rest = line.strip_prefix("if [[ \"$curPhase\" = ")?;
    let (phase, rest) = rest.split_once(" && -")?;
    let (flag, rest) = rest.split_at_checked(1)?;
    let var = rest.strip_prefix(" \"${")?.strip_suffix(":-}\" ]]; then")?;
    skip_test(phase, flag, var)
}

/// `case $curPhase in`, then arms `NAME)` / `if [[ -n ${VAR-} ]]; then` / `return 0;` /
/// `fi` / `;;`, up to `esac`.
fn parse_case(lines: &[&str]) -> Option<Vec<SkipTest>> {
    let (head, arms) = lines.split_first()?;
    if *head != "case $curPhase in" {
        return None;
    }
    let mut tests = Vec::new();
    let mut rest = arms;
    loop {
        match rest {
            [end, ..] if end.starts_with("esac") => break,
            [name, cond, ret, fi, semi, more @ ..] => {
                let phase = name.strip_suffix(')')?;
                let inner = cond.strip_prefix("if [[ -")?;
                let (flag, inner) = inner.split_at_checked(1)?;
                let var = inner.strip_prefix(" ${")?.strip_suffix("-} ]]; then")?;
                if *ret != "return 0;" || *fi != "fi" || *semi != ";;" {
                    return None;
                }
                tests.push(skip_test(phase, flag, var)?);
                rest = more;
            }
            _ => return None,
        }
    }
    (!tests.is_empty()).then_some(tests)
}

fn skip_test(phase: &str, flag: &str, var: &str) -> Option<SkipTest> {
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !s.as_bytes()[0].is_ascii_digit()
    };
    if !word(phase) || !word(var) {
        return None;
    }
    let when_set = match flag {
        "n" => true,
        "z" => false,
        _ => return None,
    };
    Some(SkipTest {
        phase: phase.to_owned(),
        var: var.to_owned(),
        when_set,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: &str = "runPhase () \n{ \n    local curPhase=\"$*\";\n    if [[ \"$curPhase\" = unpackPhase && -n \"${dontUnpack:-}\" ]]; then\n        return;\n    fi;\n    if [[ \"$curPhase\" = checkPhase && -z \"${doCheck:-}\" ]]; then\n        return;\n    fi;\n    showPhaseHeader \"$curPhase\";\n    eval \"${!curPhase:-$curPhase}\"\n}\n";
    const CASE: &str = "runPhase () \n{ \n    local curPhase=$*;\n    case $curPhase in \n        unpackPhase)\n            if [[ -n ${dontUnpack-} ]]; then\n                return 0;\n            fi\n        ;;\n        checkPhase)\n            if [[ -z ${doCheck-} ]]; then\n                return 0;\n            fi\n        ;;\n    esac;\n    eval \"${!curPhase:-$curPhase}\"\n}\n";

    fn state(run_phase: &str, vars: &[(&str, Value)]) -> ShellState {
        ShellState {
            functions: ByteString(run_phase.as_bytes().to_vec()),
            function_names: vec![("runPhase".into(), false)],
            variables: vars
                .iter()
                .map(|(n, v)| Variable {
                    name: (*n).into(),
                    attributes: Attributes::default(),
                    value: v.clone(),
                })
                .collect(),
            ..ShellState::default()
        }
    }

    fn scalar(s: &str) -> Value {
        Value::Scalar(ByteString(s.as_bytes().to_vec()))
    }

    #[test]
    fn both_shapes_skip_what_runphase_skips() {
        for text in [CHAIN, CASE] {
            let s = state(text, &[]);
            let next = skipped_phase_state(&s, "checkPhase").expect("skipped");
            assert_eq!(
                next.variable("curPhase").map(|v| &v.value),
                Some(&scalar("checkPhase"))
            );
            assert!(skipped_phase_state(&s, "unpackPhase").is_none());
            assert!(skipped_phase_state(&s, "buildPhase").is_none());
            let s = state(
                text,
                &[("doCheck", scalar("1")), ("dontUnpack", scalar("1"))],
            );
            assert!(skipped_phase_state(&s, "checkPhase").is_none());
            assert!(skipped_phase_state(&s, "unpackPhase").is_some());
            // Empty counts as unset; an array's element 0 is what `${doCheck:-}` gives.
            let s = state(text, &[("doCheck", scalar(""))]);
            assert!(skipped_phase_state(&s, "checkPhase").is_some());
            let arr = Value::Indexed(vec![(1, ByteString(b"1".to_vec()))]);
            assert!(skipped_phase_state(&state(text, &[("doCheck", arr)]), "checkPhase").is_some());
        }
    }

    #[test]
    fn anything_unrecognised_or_observable_runs_the_process() {
        let other = CHAIN.replace("return;", "echo skipped; return;");
        assert!(skipped_phase_state(&state(&other, &[]), "checkPhase").is_none());
        let other = CHAIN.replace("local curPhase", "echo hi;\n    local curPhase");
        assert!(skipped_phase_state(&state(&other, &[]), "checkPhase").is_none());
        let mut s = state(CHAIN, &[]);
        s.set_options = vec![("xtrace".into(), true)];
        assert!(skipped_phase_state(&s, "checkPhase").is_none());
        let mut s = state(CHAIN, &[]);
        s.traps = ByteString(b"trap -- 'echo r' RETURN\n".to_vec());
        assert!(skipped_phase_state(&s, "checkPhase").is_none());
        let mut s = state(CHAIN, &[]);
        s.outer_traps = ByteString(b"trap -- 'echo d' DEBUG\n".to_vec());
        assert!(skipped_phase_state(&s, "checkPhase").is_none());
        let mut s = state(CHAIN, &[("doCheck", scalar("x"))]);
        s.variables[0].attributes.nameref = true;
        assert!(skipped_phase_state(&s, "checkPhase").is_none());
        let mut s = state(CHAIN, &[("curPhase", scalar("buildPhase"))]);
        s.variables[0].attributes.readonly = true;
        assert!(skipped_phase_state(&s, "checkPhase").is_none());
        // An EXIT trap cannot see the call.
        let mut s = state(CHAIN, &[]);
        s.traps = ByteString(b"trap -- 'exitHandler' EXIT\n".to_vec());
        assert!(skipped_phase_state(&s, "checkPhase").is_some());
    }
}
