//! The bash code each process of a build runs: the setup step, a phase, and the final step.
//!
//! Pure: text generation only. Each process talks to the builder through memory files and
//! pipes the builder holds open, reached as `/proc/$PPID/fd/N` (bash's parent is the
//! builder): the *restore* file holds [`super::restore::restore_script`], the *dump* file
//! receives the sections that [`super::state::parse_state`] reads, and the others are named
//! in [`Channel`]. Nothing is written to the build directory and no descriptor is inherited
//! by the phase's own processes.
//!
//! Protocol, in order, for every process:
//! 1. `setup`: source `.attrs.sh` (Nix 2.8 fallback included) and `$stdenv/setup`, then call
//!    the stdenv's own `genericBuild` with `runPhase` temporarily replaced by a recorder, so the
//!    phase list is exactly what `genericBuild` computes (a `buildCommand` derivation, or a
//!    stdenv without `runPhase`, runs the whole build right there).
//! 2. a phase process: restore, `curPhase=NAME; runPhase "$curPhase"` (the stdenv's own), dump
//!    the state, then wait for the builder's word ([`phase_script`]). The code the builder
//!    then gives it runs the next phase in the same process ([`next_phase_code`]), ends the
//!    build there as the final step would ([`final_code`]), or leaves ([`leave_code`]) for a
//!    process restored from another state.
//! 3. `final`: restore, reproduce the status of the last step, and end normally so the EXIT trap
//!    (`exitHandler`) runs once, as in stock.
//!
//! Steps 1–2 end with the dump (setup then with `trap - EXIT; exit 0`). A process that ends
//! without writing the `end` marker ended the build: a failure, or `exit` inside a phase.
//!
//! Stock calls `genericBuild` from the builder script, which `source-stdenv.sh` sources
//! (`source "$1"`), and `genericBuild` calls `runPhase`. Every step keeps those frames
//! ([`Channel::nested`]): what follows `$stdenv/setup` runs in a second file that the step's
//! script sources (the *step* memory file), and a phase runs inside a function named
//! `genericBuild` (which first puts the stdenv's own definition back). So `FUNCNAME`, the
//! depth of xtrace's `+` prefix, and where bash saves, clears and fires the `DEBUG`,
//! `RETURN` and `ERR` traps (on entry to and return from a function or sourced file) are
//! those of stock. The traps of the state are set inside that `genericBuild` frame; the ones
//! stock's outer levels hold while `genericBuild` runs ([`ShellState::outer_traps`]) are set
//! before, at the top level.

use super::quote::quote;
use super::restore::{restore_options, restore_traps};
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
    /// The builder's fd of the step memory file (the part of a step that stock runs inside
    /// the sourced builder script).
    pub step_fd: i32,
    /// Absolute path of the builder binary (runs the `__capture` helper).
    pub helper: String,
    /// The builder's fd of the write end of the pause pipe: a phase process writes one byte
    /// there once its state is dumped, then waits.
    pub paused_fd: i32,
    /// The builder's fd of the read end of the go pipe: a waiting phase process reads one
    /// line there, then runs the code of the next memory file.
    pub go_fd: i32,
    /// The builder's fd of the memory file with the code a waiting process runs next.
    pub next_fd: i32,
    /// The builder's fd of a scratch memory file: the setup step writes text there and reads
    /// it back, where a command substitution would fork.
    pub scratch_fd: i32,
    /// Stock sources the builder script (`bash -e source-stdenv.sh default-builder.sh`), so
    /// `genericBuild` runs one `source` deeper than the top level; `false` for the older
    /// `bash -e default-builder.sh`, which calls it at the top level.
    pub nested: bool,
}

/// The code of one step: `main` is the script bash runs; `inner`, when set, is the content
/// of the step memory file, which `main` sources last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepCode {
    pub main: String,
    pub inner: Option<String>,
}

/// The quoted path at which a step's bash reaches the builder's descriptor `fd`.
fn builder_fd(fd: i32) -> String {
    format!("\"/proc/$PPID/fd/{fd}\"")
}

impl Channel {
    fn dump(&self) -> String {
        builder_fd(self.dump_fd)
    }

    fn scratch(&self) -> String {
        builder_fd(self.scratch_fd)
    }

    fn marker(&self, name: &str) -> String {
        format!("'\\n#CPB-{} {}\\n'", self.nonce, name)
    }

    /// `outer` then `body`: `body` in the step file, sourced at the end of `outer`, when
    /// stock runs it one `source` deeper; appended to `outer` otherwise.
    fn nest(&self, mut outer: String, body: String) -> StepCode {
        if self.nested {
            outer.push_str(&format!("builtin source {}\n", builder_fd(self.step_fd)));
            StepCode {
                main: outer,
                inner: Some(body),
            }
        } else {
            outer.push_str(&body);
            StepCode {
                main: outer,
                inner: None,
            }
        }
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
///
/// Besides the state, it records the traps the first phase starts with (`inner-traps`, as
/// the recorder sees them inside `genericBuild`'s dynamic scope) and the top level's `DEBUG`
/// trap (`outer-debug`; a sourced file runs with it cleared), from which
/// [`super::state::parse_state`] tells the traps of `genericBuild`'s frame from those of the
/// levels around it.
pub fn setup_script(ch: &Channel, hidden_output: Option<&str>) -> StepCode {
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
        "{{ builtin printf {}; builtin trap -p DEBUG; }} >>{d}\n",
        ch.marker("outer-debug")
    ));
    // The recorder writes the traps it sees and the phases marker on its first call, then
    // replaces itself by the plain recorder. The stdenv's `runPhase` waits in the scratch
    // file meanwhile (no name of ours exists while `genericBuild` runs), and is defined
    // again from there.
    let body = format!(
        concat!(
            "{reads_source}",
            "if [[ -z $__cpb_whole ]] && builtin declare -F runPhase >/dev/null; then\n",
            "builtin unset -v __cpb_whole\n",
            "builtin declare -f runPhase >|{scratch}\n",
            "runPhase() {{ {{ builtin printf {it}; builtin trap -p; builtin printf {m}; ",
            "builtin printf '%s\\0' \"$1\"; }} >>{d}; ",
            "runPhase() {{ builtin printf '%s\\0' \"$1\" >>{d}; }}; }}\n",
            "genericBuild\n",
            "{ep_status}",
            "IFS= builtin read -r -d '' __cpb_def <{scratch} || builtin :\n",
            "builtin eval \"$__cpb_def\"\n",
            "builtin unset -v __cpb_def\n",
            "else\n",
            "builtin unset -v __cpb_whole\n",
            "genericBuild\n",
            "{ep_status}",
            "fi\n",
            "{epilogue}",
        ),
        reads_source = reads_bash_source(ch),
        scratch = ch.scratch(),
        d = d,
        it = ch.marker("inner-traps"),
        m = ch.marker("phases"),
        ep_status = status_line(ch),
        epilogue = epilogue(ch),
    );
    ch.nest(s, body)
}

/// Sets `__cpb_whole` when a function defined by the end of setup (a setup hook's) reads
/// `BASH_SOURCE`: restored functions would see the restore file there, not the hook's own
/// path (docs/state-carry.md), so the build then runs whole in the setup step, like a
/// `buildCommand`, and says so. Run with xtrace off (the function text would be traced);
/// the text goes through the scratch file, not a command substitution's subshell.
fn reads_bash_source(ch: &Channel) -> String {
    format!(
        concat!(
            "{{ __cpb_xt=${{-//[^x]/}}; builtin set +x; }} 2>/dev/null\n",
            "builtin declare -f >|{scratch}\n",
            "IFS= builtin read -r -d '' __cpb_whole <{scratch} || builtin :\n",
            "if [[ $__cpb_whole == *BASH_SOURCE* ]]; then __cpb_whole=1; builtin echo ",
            "'checkpoint-builder: a function defined at setup reads BASH_SOURCE, which phase processes ",
            "cannot reproduce; running all phases in one process (no per-phase checkpoints)' >&2; ",
            "else __cpb_whole=; fi\n",
            "if [[ -n $__cpb_xt ]]; then builtin unset -v __cpb_xt; builtin set -x; ",
            "else builtin unset -v __cpb_xt; fi\n",
        ),
        scratch = ch.scratch(),
    )
}

/// The top level of a restored step: the restore file, then the traps stock's outer levels
/// hold while `genericBuild` runs.
fn restored_top(ch: &Channel, state: &ShellState) -> String {
    let mut s = restore_head(ch);
    s.push_str(&restore_traps(state.outer_traps.as_bytes()));
    s
}

/// The start of the `genericBuild` frame: the stdenv's own definition is put back (bash runs
/// a copy of the executing function, so this one goes on), or the name removed when the
/// state has no such function.
fn generic_build_frame(state: &ShellState) -> String {
    let mut s = String::from("genericBuild () \n{ \n");
    match state.function_text("genericBuild") {
        Some(text) => {
            s.push_str(&String::from_utf8_lossy(text));
            if !s.ends_with('\n') {
                s.push('\n');
            }
        }
        None => s.push_str("builtin unset -f genericBuild\n"),
    }
    s
}

/// Traps and options inside the `genericBuild` frame: the outer levels' `DEBUG`, `RETURN`
/// and `ERR` traps are cleared first (bash only keeps them there under `functrace` or
/// `errtrace`, and then the state lists them again).
fn frame_traps_and_options(state: &ShellState) -> String {
    let mut s = String::new();
    if !state.outer_traps.as_bytes().is_empty() {
        s.push_str("builtin trap - DEBUG RETURN ERR\n");
    }
    s.push_str(&restore_traps(state.traps.as_bytes()));
    s.push_str(&restore_options(state));
    s
}

/// A phase step: restore, run the phase through the stdenv's `runPhase` inside a
/// `genericBuild` frame, dump, and wait for the builder.
///
/// The wait is the condition of a loop whose body runs the next phase, as stock's loop in
/// `genericBuild` does. It writes the pause byte, reads one line from the go pipe, then
/// evaluates the code of the next memory file, with xtrace and verbose off and the frame's
/// `DEBUG`, `RETURN` and `ERR` traps cleared (the dump leaves them so). That code first
/// unsets the variable it was read into, so nothing of the builder's stays in the state;
/// then it sets up the next phase and ends with its options (xtrace last), or returns from
/// `genericBuild`, or exits. A failed read of the go pipe (the builder is gone) ends the
/// process without the EXIT trap. The loop ending any other way is the builder's error,
/// never a silent end of the build: the process exits with status 70. A `TMOUT` in the
/// state would end the wait early, so the builder lets no such process go on
/// ([`crate::build::waiting::goes_on`]).
pub fn phase_script(ch: &Channel, state: &ShellState, phase: &str) -> StepCode {
    let mut body = generic_build_frame(state);
    body.push_str(&t0_line(ch));
    body.push_str(&format!("curPhase={}\n", quote(phase.as_bytes())));
    body.push_str(&frame_traps_and_options(state));
    let run = format!(
        "runPhase \"$curPhase\"\n{}{}",
        status_line(ch),
        dump_state(ch)
    );
    body.push_str(&run);
    body.push_str(&format!(
        concat!(
            "while builtin printf . >>{paused} && ",
            "{{ builtin read -r __cpb_go <{go} || ",
            "{{ builtin trap - EXIT; builtin exit 1; }}; }} && ",
            "{{ builtin read -r -d '' __cpb_go <{next} || builtin :; }} && ",
            "{{ builtin set +v; }} 2>/dev/null && builtin eval \"$__cpb_go\"; do\n",
            "{run}",
            "done\n",
            "builtin trap - EXIT\n",
            "builtin exit 70\n",
        ),
        paused = builder_fd(ch.paused_fd),
        go = builder_fd(ch.go_fd),
        next = builder_fd(ch.next_fd),
        run = run,
    ));
    body.push_str("}\ngenericBuild\n");
    ch.nest(restored_top(ch, state), body)
}

/// What a waiting phase process runs to go on with `phase` from `state`: the state it
/// dumped, but for `curPhase` (and the traps and xtrace the dump cleared, set again here).
pub fn next_phase_code(ch: &Channel, state: &ShellState, phase: &str) -> String {
    let mut s = String::from("builtin unset -v __cpb_go\n");
    s.push_str(&t0_line(ch));
    s.push_str(&format!("curPhase={}\n", quote(phase.as_bytes())));
    s.push_str(&frame_traps_and_options(state));
    s
}

/// What a waiting phase process runs to end the build as [`final_script`] would: the traps
/// and options back, then `genericBuild` returns with the last step's status, and the
/// script ends normally (the EXIT trap runs).
pub fn final_code(state: &ShellState, last_status: i32) -> String {
    let mut s = String::from("builtin unset -v __cpb_go\n");
    s.push_str(&frame_traps_and_options(state));
    s.push_str(&format!("builtin return {last_status}\n"));
    s
}

/// What a waiting phase process runs to leave without ending the build (the next step starts
/// from another state, in a process of its own).
pub fn leave_code() -> String {
    String::from("builtin trap - EXIT\nbuiltin exit 0\n")
}

/// Records when the step's own work starts.
fn t0_line(ch: &Channel) -> String {
    format!(
        "builtin printf {}'%s\\n' \"$EPOCHREALTIME\" >>{}\n",
        ch.marker("t0"),
        ch.dump()
    )
}

/// The final step: restore, give `$?` the last step's status, end normally (EXIT trap runs).
///
/// When phases ran as steps, `genericBuild` returns here, with the last status: a `RETURN`
/// trap a phase set fires, as in stock, and so do the `ERR` traps for a failing status (in
/// stock, for `genericBuild` and for `source "$1"`). A build that ran whole in the setup step
/// (`buildCommand`) already returned from `genericBuild` there; only the sourced builder
/// script still ends here.
pub fn final_script(
    ch: &Channel,
    state: &ShellState,
    last_status: i32,
    phases_ran: bool,
) -> StepCode {
    let mut body = String::new();
    if phases_ran {
        body.push_str(&generic_build_frame(state));
        body.push_str(&frame_traps_and_options(state));
        if last_status != 0 {
            body.push_str(&format!("builtin return {last_status}\n"));
        }
        body.push_str("}\ngenericBuild\n");
    } else {
        body.push_str(&restore_traps(state.traps.as_bytes()));
        body.push_str(&restore_options(state));
        if last_status != 0 {
            if ch.nested {
                body.push_str(&format!("builtin return {last_status}\n"));
            } else {
                // `&&`: the status without running the ERR trap (it ran in the setup step).
                body.push_str(&format!("(builtin exit {last_status}) && builtin :\n"));
            }
        }
    }
    ch.nest(restored_top(ch, state), body)
}

fn restore_head(ch: &Channel) -> String {
    format!(". {}\n", builder_fd(ch.restore_fd))
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
    let mut s = dump_state(ch);
    s.push_str(&leave_code());
    s
}

/// Dumps the whole state, ending with the `end` marker. Leaves xtrace off and the `DEBUG`,
/// `RETURN` and `ERR` traps cleared.
fn dump_state(ch: &Channel) -> String {
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
