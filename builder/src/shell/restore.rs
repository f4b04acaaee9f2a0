//! Generation of the bash code that recreates a [`ShellState`] in a fresh bash process.
//!
//! Pure: a state in, text out. The code is split in two because of how bash works:
//! [`restore_script`] is sourced (shell options, cwd, variables, functions, redirections) and
//! [`restore_tail`] runs in the driver after the `source` returns (traps, because a `RETURN`
//! trap set inside a sourced file fires when the `source` ends; then `set -o` options, with
//! xtrace last so the restore itself is never traced).
//!
//! Nothing of the state is written as code except option names (from closed lists), variable
//! names (identifiers) and the function text, which [`super::validate`] proved to be plain
//! definitions; every value, key, path, trap handler and exported function name goes through
//! [`quote`].

use super::declare::{Value, Variable};
use super::quote::quote;
use super::state::ShellState;
use super::traps::{parse_traps, render_traps};
use std::collections::HashMap;
use std::fmt::Write;

/// Variables a fresh `bash` creates at start-up that stock may have changed or unset; they
/// are unset first so that each ends up exactly as the state says (value, attributes, and
/// position in the environment's order).
const STARTUP_VARIABLES: &[&str] = &[
    "BASH", "IFS", "OLDPWD", "OPTERR", "PATH", "PS4", "PWD", "SHELL", "SHLVL", "TERM",
];

/// `shopt` options bash refuses to set.
const READONLY_SHOPT: &[&str] = &["login_shell", "restricted_shell"];

/// Whether `name` is one of the `compatNN` options. Bash 5 derives them from the
/// compatibility level, and setting or unsetting any of them assigns `BASH_COMPAT` (even
/// `shopt -u compat31` in a fresh shell sets it to the current version). They are off in the
/// fresh bash a phase starts in; when the build turned one on, `BASH_COMPAT` holds the level
/// and is restored as a variable, which sets the option again. So they are never set here,
/// and `BASH_COMPAT` exists in a phase exactly when the build made it.
fn is_compat_option(name: &str) -> bool {
    name.strip_prefix("compat")
        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// The code sourced at the start of a phase process.
pub fn restore_script(state: &ShellState) -> String {
    let mut out = String::with_capacity(16 * 1024 + state.functions.as_bytes().len());
    // Options that affect parsing (extglob) must be on before functions are defined.
    let (on, off): (Vec<_>, Vec<_>) = state
        .shopt_options
        .iter()
        .filter(|(name, _)| !READONLY_SHOPT.contains(&name.as_str()))
        .filter(|(name, _)| !is_compat_option(name) || compat_needs_option(state, name))
        .partition(|(_, enabled)| *enabled);
    if !on.is_empty() {
        out.push_str("builtin shopt -s");
        for (name, _) in &on {
            write!(out, " {name}").unwrap();
        }
        out.push('\n');
    }
    if !off.is_empty() {
        out.push_str("builtin shopt -u");
        for (name, _) in &off {
            write!(out, " {name}").unwrap();
        }
        out.push('\n');
    }
    // The logical cwd first: `cd` changes PWD and OLDPWD, which are restored afterwards.
    writeln!(
        out,
        "builtin cd -L -- {} || builtin echo \"checkpoint-builder: cannot enter the phase's working directory\" >&2",
        quote(state.cwd.as_bytes())
    )
    .unwrap();
    out.push_str("builtin unset -v");
    for name in STARTUP_VARIABLES {
        write!(out, " {name}").unwrap();
    }
    out.push('\n');

    // Exported variables are created in reverse environment order: bash inserts each new
    // variable at the head of its hash bucket and builds children's environment by walking the
    // buckets, so this reproduces the environment order the phase had.
    let by_name: HashMap<&str, &Variable> = state
        .variables
        .iter()
        .map(|v| (v.name.as_str(), v))
        .collect();
    let mut done: HashMap<&str, ()> = HashMap::new();
    for name in state.export_order.iter().rev() {
        if let Some(var) = by_name.get(name.as_str()) {
            if done.insert(var.name.as_str(), ()).is_none() {
                declare(&mut out, var);
            }
        }
    }
    for var in &state.variables {
        if !done.contains_key(var.name.as_str()) {
            declare(&mut out, var);
        }
    }
    for dir in state.dir_stack.iter().rev() {
        writeln!(
            out,
            "builtin pushd -n -- {} >/dev/null",
            quote(dir.as_bytes())
        )
        .unwrap();
    }
    // Plain `exec`: `builtin exec >f` would scope the redirection to that one command. It
    // comes before the functions, so no function can shadow it.
    match (&state.stdout_target, &state.stderr_target) {
        (Some(o), Some(e)) if o == e => {
            writeln!(out, "exec >>{} 2>&1", quote(o.as_bytes())).unwrap()
        }
        (o, e) => {
            if let Some(o) = o {
                writeln!(out, "exec >>{}", quote(o.as_bytes())).unwrap();
            }
            if let Some(e) = e {
                writeln!(out, "exec 2>>{}", quote(e.as_bytes())).unwrap();
            }
        }
    }
    out.push_str(&String::from_utf8_lossy(state.functions.as_bytes()));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let exported_functions: Vec<String> = state
        .function_names
        .iter()
        .filter(|(_, x)| *x)
        .map(|(n, _)| quote(n.as_bytes()))
        .collect();
    if !exported_functions.is_empty() {
        writeln!(out, "builtin export -f {}", exported_functions.join(" ")).unwrap();
    }
    out
}

/// A `compatNN` option the state has on while it has no `BASH_COMPAT` variable (a bash whose
/// options do not follow the variable): the option alone carries the level, so it is set.
/// With the variable present, restoring it sets the level and the option.
fn compat_needs_option(state: &ShellState, name: &str) -> bool {
    state.shopt_options.iter().any(|(n, on)| n == name && *on)
        && state.variable("BASH_COMPAT").is_none()
}

/// The code run right after the restore script returns: traps, then `set -o` options (the
/// host shell's order; a build's steps set the traps inside a `genericBuild` frame, see
/// [`super::driver`]).
pub fn restore_tail(state: &ShellState) -> String {
    let mut out = restore_traps(state.traps.as_bytes());
    out.push_str(&restore_options(state));
    out
}

/// The commands that set the traps of `trap -p` text again. Never the stored text itself:
/// each handler is quoted again here. A state that does not parse was refused where it was
/// read (`parse_state`, `validate::load_state`).
pub fn restore_traps(traps: &[u8]) -> String {
    render_traps(&parse_traps(traps).unwrap_or_default())
}

/// The `set -o` options, xtrace last so that nothing before is traced.
pub fn restore_options(state: &ShellState) -> String {
    let mut out = String::new();
    let mut xtrace = false;
    let mut on = Vec::new();
    let mut off = Vec::new();
    for (name, enabled) in &state.set_options {
        if name == "xtrace" {
            xtrace = *enabled;
            continue;
        }
        if *enabled {
            on.push(name.as_str());
        } else {
            off.push(name.as_str());
        }
    }
    for name in off {
        writeln!(out, "builtin set +o {name}").unwrap();
    }
    for name in on {
        writeln!(out, "builtin set -o {name}").unwrap();
    }
    if xtrace {
        out.push_str("builtin set -o xtrace\n");
    }
    out
}

fn declare(out: &mut String, var: &Variable) {
    let a = &var.attributes;
    let mut flags = String::new();
    match var.value {
        Value::Indexed(_) | Value::UnsetIndexed => flags.push('a'),
        Value::Assoc(_) | Value::UnsetAssoc => flags.push('A'),
        _ => {}
    }
    for (on, f) in [
        (a.exported, 'x'),
        (a.integer, 'i'),
        (a.lowercase, 'l'),
        (a.uppercase, 'u'),
        (a.nameref, 'n'),
        (a.trace, 't'),
        (a.readonly, 'r'),
    ] {
        if on {
            flags.push(f);
        }
    }
    let flags = if flags.is_empty() {
        "--".to_owned()
    } else {
        format!("-{flags}")
    };
    // Plain `declare` (not `builtin declare`): only then does bash parse `x=(…)` as an
    // assignment. No function can shadow it yet: functions are restored after variables.
    write!(out, "declare -g {flags} {}", var.name).unwrap();
    match &var.value {
        Value::UnsetScalar | Value::UnsetIndexed | Value::UnsetAssoc => {}
        Value::Scalar(s) => {
            write!(out, "={}", quote(s.as_bytes())).unwrap();
        }
        Value::Indexed(elements) => {
            out.push_str("=(");
            for (i, (index, v)) in elements.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write!(out, "[{index}]={}", quote(v.as_bytes())).unwrap();
            }
            out.push(')');
        }
        Value::Assoc(elements) => {
            // Inserted in reverse so bash's per-bucket head insertion gives back the order
            // that `declare -p` printed (exact up to bash's table growth at 2048 keys).
            out.push_str("=(");
            for (i, (key, v)) in elements.iter().rev().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write!(out, "[{}]={}", quote(key.as_bytes()), quote(v.as_bytes())).unwrap();
            }
            out.push(')');
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::declare::parse_declarations;

    fn state(shopt: &[(&str, bool)], declarations: &[u8]) -> ShellState {
        ShellState {
            shopt_options: shopt.iter().map(|(n, on)| ((*n).to_owned(), *on)).collect(),
            variables: parse_declarations(declarations).unwrap(),
            cwd: "/".into(),
            ..ShellState::default()
        }
    }

    /// Any `shopt` of a `compatNN` option assigns `BASH_COMPAT`: none may be written unless
    /// the option alone carries the level.
    #[test]
    fn compat_options_are_carried_by_bash_compat() {
        let script = restore_script(&state(
            &[("compat43", false), ("compat44", false), ("extglob", true)],
            b"",
        ));
        assert!(!script.contains("compat4"), "{script}");
        assert!(script.contains("shopt -s extglob"), "{script}");
        let script = restore_script(&state(
            &[("compat44", true)],
            b"declare -- BASH_COMPAT=\"44\"\n",
        ));
        assert!(!script.contains("compat44"), "{script}");
        assert!(
            script.contains("BASH_COMPAT='44'") || script.contains("BASH_COMPAT=44"),
            "{script}"
        );
        let script = restore_script(&state(&[("compat44", true)], b""));
        assert!(script.contains("shopt -s compat44"), "{script}");
    }
}
