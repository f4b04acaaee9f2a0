//! What `checkpoint-builder shell` leaves out of a state before it opens an interactive bash
//! on the host, outside any sandbox, and the rc file that bash reads.
//!
//! Pure: a validated state in, a trimmed state, a report and rc text out. An interactive bash
//! runs code by itself (traps, `PROMPT_COMMAND`, prompt strings under `promptvars`,
//! `command_not_found_handle`, `MAILPATH` messages, `BASH_ENV` for every bash started from it,
//! history files it writes or truncates, the dynamic loader's `LD_*`). None of that may come
//! from a checkpoint, which may be anyone's: it is removed here and reset by the rc file. The
//! state's functions stay (entering that state is what the user asked for); they run only
//! when called, and the report lists those that shadow a bash builtin.

use super::funcdef::{definition_end, FunctionError};
use super::names::is_builtin;
use super::quote::quote;
use super::restore::{restore_script, restore_tail};
use super::state::ShellState;
use super::traps::parse_traps;
use super::ByteString;

/// Variables bash itself reads to run or write something (or, `histchars`, to rewrite what
/// the user types), or that make the host's dynamic loader or C library load code, left out
/// of the host shell.
pub const HOST_DROPPED_VARIABLES: &[&str] = &[
    "BASH_ENV",
    "BASH_LOADABLES_PATH",
    "BASH_XTRACEFD",
    "EDITOR",
    "ENV",
    "FCEDIT",
    "GCONV_PATH",
    "INPUTRC",
    "LOCPATH",
    "MAIL",
    "MAILCHECK",
    "MAILPATH",
    "PROMPT_COMMAND",
    "PS0",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "TERMINFO",
    "TERMINFO_DIRS",
    "VISUAL",
    "histchars",
];

/// Variables that make common tools a developer runs to *look* (`less`, `man`, `git`,
/// `sudo`, `perl`, `python`, `node`, `ruby`) run a command of the checkpoint's choosing, left
/// out the same way. Not exhaustive: the state's `PATH` stays (see docs/state-carry.md).
pub const HOST_DROPPED_TOOL_VARIABLES: &[&str] = &[
    "BROWSER",
    "GIT_ASKPASS",
    "GIT_EDITOR",
    "GIT_EXEC_PATH",
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "LESSCLOSE",
    "LESSOPEN",
    "MANPAGER",
    "NODE_OPTIONS",
    "PAGER",
    "PERL5OPT",
    "PYTHONSTARTUP",
    "RUBYOPT",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
];

/// Name prefixes left out the same way: the dynamic loader's `LD_*`, `HIST*` (`HISTFILE`
/// names the file bash writes; assigning `HISTFILESIZE` truncates it), and git's
/// `GIT_CONFIG*` (a configuration can name commands git runs).
pub const HOST_DROPPED_PREFIXES: &[&str] = &["GIT_CONFIG", "HIST", "LD_"];

/// `set -o` options the host shell leaves off: errexit/nounset (one typo would end the shell),
/// xtrace, onecmd (ends the shell after one command).
const HOST_DROPPED_SET: &[&str] = &["errexit", "nounset", "onecmd", "xtrace"];

/// `shopt` options the host shell leaves off: extdebug (runs the debugger profile), and
/// promptvars is forced off by the rc file (prompt strings never expand `$(…)`).
const HOST_DROPPED_SHOPT: &[&str] = &["extdebug", "promptvars"];

/// Functions bash calls by itself.
const HOST_DROPPED_FUNCTIONS: &[&str] = &["command_not_found_handle"];

/// What [`host_state`] left out and kept.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HostReport {
    /// `trap EXIT`, `variable PS1`, `set -o errexit`, `shopt extdebug`, `function …`.
    pub left_out: Vec<String>,
    /// How many of the state's functions the shell defines.
    pub functions_kept: usize,
    /// Those of them named like a bash builtin (they replace it when typed).
    pub shadowing_builtins: Vec<String>,
}

impl HostReport {
    /// The one stderr line saying what the shell leaves out.
    pub fn left_out_line(&self) -> String {
        format!(
            "checkpoint-builder: left out of this host shell (they would run by themselves): {}",
            if self.left_out.is_empty() {
                "nothing".to_owned()
            } else {
                self.left_out.join(", ")
            }
        )
    }

    /// The stderr line about the functions the shell keeps, if any.
    pub fn functions_line(&self) -> Option<String> {
        if self.functions_kept == 0 {
            return None;
        }
        let mut line = format!(
            "checkpoint-builder: {} functions of the checkpoint are defined (they run only when called)",
            self.functions_kept
        );
        if !self.shadowing_builtins.is_empty() {
            line.push_str(&format!(
                "; these replace bash builtins of the same name: {}",
                self.shadowing_builtins.join(" ")
            ));
        }
        Some(line)
    }
}

fn dropped_variable(name: &str) -> bool {
    HOST_DROPPED_VARIABLES.contains(&name)
        || HOST_DROPPED_TOOL_VARIABLES.contains(&name)
        || HOST_DROPPED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Removes from a validated `state` everything an interactive bash would run or write by
/// itself. `Err` only for function text that validation would have refused.
pub fn host_state(state: &mut ShellState) -> Result<HostReport, FunctionError> {
    let mut report = HostReport::default();
    for t in parse_traps(state.traps.as_bytes()).unwrap_or_default() {
        report.left_out.push(format!("trap {}", t.condition));
    }
    for t in parse_traps(state.outer_traps.as_bytes()).unwrap_or_default() {
        let item = format!("trap {}", t.condition);
        if !report.left_out.contains(&item) {
            report.left_out.push(item);
        }
    }
    state.traps = ByteString::default();
    state.outer_traps = ByteString::default();
    state.variables.retain(|v| {
        let drop = dropped_variable(&v.name);
        if drop {
            report.left_out.push(format!("variable {}", v.name));
        }
        !drop
    });
    state.export_order.retain(|n| !dropped_variable(n));
    state.set_options.retain(|(name, on)| {
        let drop = HOST_DROPPED_SET.contains(&name.as_str());
        if drop && *on {
            report.left_out.push(format!("set -o {name}"));
        }
        !drop
    });
    state.shopt_options.retain(|(name, on)| {
        let drop = HOST_DROPPED_SHOPT.contains(&name.as_str());
        if drop && *on {
            report.left_out.push(format!("shopt {name}"));
        }
        !drop
    });
    // Functions: cut the dropped ones out of the text, definition by definition.
    let text = state.functions.as_bytes().to_vec();
    let mut kept_text = Vec::with_capacity(text.len());
    let mut kept_names = Vec::new();
    let mut pos = 0;
    for (name, exported) in std::mem::take(&mut state.function_names) {
        let end = definition_end(&name, &text, pos)?;
        if HOST_DROPPED_FUNCTIONS.contains(&name.as_str()) {
            report.left_out.push(format!("function {name}"));
        } else {
            kept_text.extend_from_slice(&text[pos..end]);
            if is_builtin(&name) {
                report.shadowing_builtins.push(name.clone());
            }
            kept_names.push((name, exported));
        }
        pos = end;
    }
    report.functions_kept = kept_names.len();
    state.function_names = kept_names;
    state.functions = ByteString(kept_text);
    Ok(report)
}

/// The rc file of the host shell: the restore code of a state trimmed by [`host_state`], then
/// resets that hold whatever the state did, a fixed prompt, and a greeting.
pub fn host_rc(state: &ShellState, phase: &str, base: &str) -> String {
    // First of all: no history file (bash set its default before reading this file).
    let mut rc = String::from("builtin unset -v HISTFILE\n");
    rc.push_str(&restore_script(state));
    rc.push_str(&restore_tail(state));
    rc.push_str(concat!(
        "builtin trap - EXIT ERR DEBUG RETURN\n",
        "builtin unset -v HISTFILE PROMPT_COMMAND PS0 PS1 PS2 PS3 PS4 BASH_ENV ENV MAIL MAILPATH\n",
        "builtin unset -f command_not_found_handle\n",
        "builtin shopt -u promptvars extdebug\n",
    ));
    rc.push_str(&format!(
        "PS1={}\nPS2='> '\n",
        quote(format!("[checkpoint {phase}] \\w\\$ ").as_bytes())
    ));
    rc.push_str(&format!(
        "builtin printf '%s\\n' {} >&2\n",
        quote(format!("checkpoint-builder: state after {phase}; outputs under {base}").as_bytes())
    ));
    rc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::{Attributes, Value, Variable};
    use std::process::{Command, Stdio};

    fn var(name: &str, value: &str) -> Variable {
        Variable {
            name: name.to_owned(),
            attributes: Attributes::default(),
            value: Value::Scalar(ByteString::from(value)),
        }
    }

    /// A state with legitimate names that an interactive bash would run by itself.
    fn hostile_but_valid(canary: &str) -> ShellState {
        let touch = |tag: &str| format!("touch {canary}.{tag}");
        let mut variables = vec![
            var("PROMPT_COMMAND", &touch("prompt-command")),
            var("PS0", &format!("$({})", touch("ps0"))),
            var("PS2", &format!("$({})", touch("ps2"))),
            var("PS4", &format!("$({})", touch("ps4"))),
            var("evil", &format!("$({})", touch("ps1-nameref"))),
            Variable {
                name: "PS1".into(),
                attributes: Attributes {
                    nameref: true,
                    ..Attributes::default()
                },
                value: Value::Scalar(ByteString::from("evil")),
            },
            Variable {
                name: "HISTFILE".into(),
                attributes: Attributes {
                    readonly: true,
                    ..Attributes::default()
                },
                value: Value::Scalar(ByteString::from(format!("{canary}.histfile").as_str())),
            },
            var("HISTFILESIZE", "0"),
            var(
                "MAILPATH",
                &format!("{canary}.mbox?$({})", touch("mailpath")),
            ),
            var("MAILCHECK", "0"),
            Variable {
                name: "BASH_ENV".into(),
                attributes: Attributes {
                    exported: true,
                    ..Attributes::default()
                },
                value: Value::Scalar(ByteString::from(format!("{canary}.bashenv").as_str())),
            },
            Variable {
                name: "LD_PRELOAD".into(),
                attributes: Attributes {
                    exported: true,
                    ..Attributes::default()
                },
                value: Value::Scalar(ByteString::from("/nonexistent/preload.so")),
            },
            var("ordinary", "kept"),
            var("LESSOPEN", &format!("|{} %s", touch("lessopen"))),
            var("GIT_CONFIG_COUNT", "1"),
            Variable {
                name: "PATH".into(),
                attributes: Attributes {
                    exported: true,
                    ..Attributes::default()
                },
                value: Value::Scalar(ByteString::from("/usr/bin:/bin")),
            },
        ];
        variables.sort_by(|a, b| a.name.cmp(&b.name));
        let functions = format!(
            "command_not_found_handle () \n{{ \n    {}\n}}\nf () \n{{ \n    echo f-ran\n}}\nprintf () \n{{ \n    {}\n}}\n",
            touch("not-found"),
            touch("printf-fn")
        );
        ShellState {
            variables,
            function_names: vec![
                ("command_not_found_handle".into(), false),
                ("f".into(), true),
                ("printf".into(), false),
            ],
            functions: ByteString::from(functions.as_str()),
            traps: ByteString::from(
                format!(
                    "trap -- '{}' EXIT\ntrap -- '{}' DEBUG\ntrap -- '{}' ERR\ntrap -- '{}' RETURN\n",
                    touch("exit"),
                    touch("debug"),
                    touch("err"),
                    touch("return")
                )
                .as_str(),
            ),
            set_options: vec![("xtrace".into(), true), ("functrace".into(), true)],
            shopt_options: vec![("promptvars".into(), true), ("extdebug".into(), true)],
            cwd: ByteString::from("/"),
            ..ShellState::default()
        }
    }

    #[test]
    fn host_shell_runs_nothing_the_state_carries() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let canary = dir.join("canary").display().to_string();
        std::fs::write(
            format!("{canary}.bashenv"),
            format!("touch {canary}.bash-env-ran\n"),
        )
        .unwrap();
        let mut state = hostile_but_valid(&canary);
        crate::shell::validate::validate_state(&state).unwrap();
        let report = host_state(&mut state).unwrap();
        for item in [
            "trap EXIT",
            "trap DEBUG",
            "variable PROMPT_COMMAND",
            "variable PS1",
            "variable HISTFILE",
            "variable LD_PRELOAD",
            "variable LESSOPEN",
            "variable GIT_CONFIG_COUNT",
            "function command_not_found_handle",
            "shopt extdebug",
            "set -o xtrace",
        ] {
            assert!(
                report.left_out.iter().any(|l| l == item),
                "{item}: {report:?}"
            );
        }
        assert_eq!(report.functions_kept, 2);
        assert_eq!(report.shadowing_builtins, ["printf"]);
        assert!(report.left_out_line().contains("variable PROMPT_COMMAND"));
        let rc = dir.join("rc");
        std::fs::write(&rc, host_rc(&state, "buildPhase", "/tmp/x")).unwrap();
        let mut child = Command::new("bash")
            .arg("--rcfile")
            .arg(&rc)
            .arg("-i")
            .env_clear()
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(
                b"no-such-command-xyz\nf\necho \"[$ordinary]\"\nfalse\nbash -c 'echo sub'\nsleep 1\nexit\n",
            )
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ran: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "rc" && n != "canary.bashenv")
            .collect();
        assert!(
            ran.is_empty(),
            "ran: {ran:?}\nstdout: {stdout}\nstderr: {stderr}"
        );
        assert!(
            stdout.contains("f-ran") && stdout.contains("[kept]"),
            "{stdout}"
        );
        assert!(stdout.contains("sub"), "{stdout}");
        assert!(stderr.contains("[checkpoint buildPhase]"), "{stderr}");
    }

    #[test]
    fn the_greeting_and_prompt_quote_the_phase() {
        let rc = host_rc(&ShellState::default(), "x'; touch /tmp/p; '", "/b");
        assert!(
            rc.contains("PS1=$'[checkpoint x\\'; touch /tmp/p; \\'] \\\\w\\\\$ '"),
            "{rc}"
        );
    }
}
