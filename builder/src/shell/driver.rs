//! The bash code each process of a build runs: the setup step, a phase, and the final step.
//!
//! Pure: text generation only. Each process talks to the builder through two memory files the
//! builder holds open, reached as `/proc/$PPID/fd/N` (bash's parent is the builder): the
//! *restore* file holds [`super::restore::restore_script`], the *dump* file receives the
//! sections that [`super::state::parse_state`] reads. Nothing is written to the build
//! directory and no descriptor is inherited by the phase's own processes.
//!
//! Protocol, in order, for every process:
//! 1. `setup`: source `.attrs.sh` (Nix 2.8 fallback included) and `$stdenv/setup`, then call
//!    the stdenv's own `genericBuild` with `runPhase` temporarily replaced by a recorder, so the
//!    phase list is exactly what `genericBuild` computes (a `buildCommand` derivation, or a
//!    stdenv without `runPhase`, runs the whole build right there).
//! 2. one process per phase: restore, `curPhase=NAME; runPhase "$curPhase"` (the stdenv's own).
//! 3. `final`: restore, reproduce the status of the last step, and end normally so the EXIT trap
//!    (`exitHandler`) runs once, as in stock.
//!
//! Steps 1–2 end with the epilogue (state dump, then `trap - EXIT; exit 0`). A process that ends
//! without writing the `end` marker ended the build: a failure, or `exit` inside a phase.

use super::quote::quote;
use super::state::ShellState;

/// Names and numbers a script needs to reach the builder.
#[derive(Clone, Debug)]
pub struct Channel {
    /// Random marker so dump sections cannot be forged by values or function bodies.
    pub nonce: String,
    /// The builder's fd of the dump memory file.
    pub dump_fd: i32,
    /// The builder's fd of the restore memory file.
    pub restore_fd: i32,
    /// Absolute path of the builder binary (runs the `__capture` helper).
    pub helper: String,
}

impl Channel {
    fn dump(&self) -> String {
        format!("\"/proc/$PPID/fd/{}\"", self.dump_fd)
    }

    fn marker(&self, name: &str) -> String {
        format!("'\\n#CPB-{} {}\\n'", self.nonce, name)
    }
}

/// Sources structured attrs like `source-stdenv.sh`, with the fallback for Nix versions that
/// export `NIX_ATTRS_SH_FILE` as a path outside the sandbox (Nix 2.8), then the stdenv.
/// A `hidden_output` is removed from the structured-attrs `outputs` map before setup sees it
/// (the non-structured case is handled in the environment by the runner).
fn source_stdenv(hidden_output: Option<&str>) -> String {
    let mut s = String::from(concat!(
        "if [ -f \"${NIX_ATTRS_SH_FILE:-}\" ]; then . \"$NIX_ATTRS_SH_FILE\"; ",
        "elif [ -f \"${NIX_BUILD_TOP:-.}/.attrs.sh\" ]; then . \"${NIX_BUILD_TOP:-.}/.attrs.sh\"; fi\n",
    ));
    if let Some(name) = hidden_output {
        s.push_str(&format!(
            "if [[ ${{outputs@a}} == *A* ]]; then builtin unset 'outputs[{name}]'; fi\n"
        ));
    }
    s.push_str(". \"$stdenv/setup\"\n");
    s
}

/// The setup step.
pub fn setup_script(ch: &Channel, hidden_output: Option<&str>) -> String {
    let d = ch.dump();
    let mut s = String::new();
    s.push_str(&format!(
        "builtin printf {}'%s\\n' \"$EPOCHREALTIME\" >>{d}\n",
        ch.marker("t0")
    ));
    s.push_str(&source_stdenv(hidden_output));
    // Whether curPhase existed before genericBuild (its loop leaves it set).
    s.push_str(&format!(
        "{{ builtin printf {}; builtin declare -p curPhase 2>/dev/null || builtin true; }} >>{d}\n",
        ch.marker("pre-generic")
    ));
    s.push_str(&format!(
        concat!(
            "if builtin declare -F runPhase >/dev/null; then\n",
            "builtin eval \"__cpb_saved_$(builtin declare -f runPhase)\"\n",
            "runPhase() {{ builtin printf '%s\\0' \"$1\" >>{d}; }}\n",
            "builtin printf {m} >>{d}\n",
            "genericBuild\n",
            "{ep_status}",
            "__cpb_def=$(builtin declare -f __cpb_saved_runPhase)\n",
            "builtin eval \"${{__cpb_def#__cpb_saved_}}\"\n",
            "builtin unset -v __cpb_def; builtin unset -f __cpb_saved_runPhase\n",
            "else\n",
            "genericBuild\n",
            "{ep_status}",
            "fi\n",
        ),
        d = d,
        m = ch.marker("phases"),
        ep_status = status_line(ch),
    ));
    s.push_str(&epilogue(ch));
    s
}

/// A phase step: restore, run the phase through the stdenv's `runPhase`, dump.
pub fn phase_script(ch: &Channel, restore_tail: &str, phase: &str) -> String {
    let d = ch.dump();
    let mut s = restore_head(ch);
    s.push_str(restore_tail);
    s.push_str(&format!(
        "builtin printf {}'%s\\n' \"$EPOCHREALTIME\" >>{d}\n",
        ch.marker("t0")
    ));
    s.push_str(&format!(
        "curPhase={}\nrunPhase \"$curPhase\"\n",
        quote(phase.as_bytes())
    ));
    s.push_str(&status_line(ch));
    s.push_str(&epilogue(ch));
    s
}

/// The final step: restore, give `$?` the last step's status, end normally (EXIT trap runs).
///
/// When a `RETURN` trap is set, stock runs it once more when the sourced builder script
/// returns at top level; sourcing an empty file gives the trap that return. (Its run when
/// `genericBuild` returns cannot be reproduced: see docs/state-carry.md.)
pub fn final_script(
    ch: &Channel,
    restore_tail: &str,
    last_status: i32,
    state: &ShellState,
) -> String {
    let mut s = restore_head(ch);
    s.push_str(restore_tail);
    let has_return_trap = super::traps::parse_traps(state.traps.as_bytes())
        .unwrap_or_default()
        .iter()
        .any(|t| t.condition == "RETURN");
    if has_return_trap {
        s.push_str("builtin source /dev/null\n");
    }
    if last_status != 0 {
        s.push_str(&format!("(builtin exit {last_status})\n"));
    }
    s
}

fn restore_head(ch: &Channel) -> String {
    format!(". \"/proc/$PPID/fd/{}\"\n", ch.restore_fd)
}

/// Records the status of the step's last command and the time; must come right after it.
fn status_line(ch: &Channel) -> String {
    format!(
        "builtin printf {}'%s %s\\n' \"$?\" \"$EPOCHREALTIME\" >>{}\n",
        ch.marker("status"),
        ch.dump()
    )
}

/// Dumps the whole state, then leaves without running the EXIT trap.
fn epilogue(ch: &Channel) -> String {
    let d = ch.dump();
    format!(
        concat!(
            "{{ builtin printf {set}; builtin set +o; builtin printf {shopt}; builtin shopt -p; ",
            "builtin printf {traps}; builtin trap -p; }} >>{d}\n",
            "{{ builtin set +x; }} 2>/dev/null\n",
            "builtin trap - DEBUG RETURN ERR\n",
            "{{ builtin printf {fnames}; builtin declare -F; builtin printf {vars}; builtin declare -p; ",
            "builtin printf {fns}; builtin declare -f; ",
            // A plain `declare -p` lists the dynamic DIRSTACK as empty; naming it computes it.
            "builtin printf {dirs}; builtin declare -p DIRSTACK; }} >>{d}\n",
            "{helper} __capture {nonce} >>{d}\n",
            "builtin printf {end} >>{d}\n",
            "builtin trap - EXIT\n",
            "builtin exit 0\n",
        ),
        set = ch.marker("set"),
        shopt = ch.marker("shopt"),
        traps = ch.marker("traps"),
        fnames = ch.marker("function-names"),
        vars = ch.marker("variables"),
        fns = ch.marker("functions"),
        dirs = ch.marker("dirstack"),
        end = ch.marker("end"),
        helper = quote(ch.helper.as_bytes()),
        nonce = ch.nonce,
        d = d,
    )
}
