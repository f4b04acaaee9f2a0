//! Runs a build: the setup step, one bash process per phase, and the final step, carrying the
//! shell state between them (see [`crate::shell::driver`] for the protocol).
//!
//! Effectful shell around the pure core in [`crate::shell`]: spawns bash in its own process
//! group, forwards termination signals to it, reads each step's state dump, and reports
//! per-phase timings.

use crate::checkpoint::RewritePair;
use crate::environment::BuildEnvironment;
use crate::incremental::try_resume;
use crate::memfile::MemFile;
use crate::nix_log;
use crate::recording::Recorder;
use crate::resume::{error_chain, path_rewrites, remove_tree, BaseCheckpoint, InitialTree};
use crate::reuse::{self, PhaseDecision};
use crate::shell::driver::{self, Channel};
use crate::shell::restore::restore_script;
use crate::shell::state::{parse_state, DumpError, DumpSections, ShellState};
use crate::shell::Value;
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RunError {
    #[error("cannot create the builder's memory file")]
    MemFile(#[source] std::io::Error),
    #[error("cannot start bash ({bash}) for step `{step}`")]
    Spawn {
        bash: PathBuf,
        step: String,
        #[source]
        source: std::io::Error,
    },
    #[error("step `{step}`: cannot read its state dump")]
    DumpIo {
        step: String,
        #[source]
        source: std::io::Error,
    },
    #[error("step `{step}` finished but its state could not be read")]
    Dump {
        step: String,
        #[source]
        source: DumpError,
    },
    #[error("the incremental restore failed: {reason}")]
    Incremental { reason: String },
    #[error("cannot record the layer after `{step}` in the checkpoint")]
    Checkpoint {
        step: String,
        #[source]
        source: crate::checkpoint::CheckpointError,
    },
}

/// How one step (setup, a phase, or the final step) went.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub name: String,
    /// Wall time of the whole process, from spawn to exit, plus reading its state.
    pub wall: Duration,
    /// Time spent in the step's own code (setup sourcing, the phase), measured inside bash.
    pub work: Option<Duration>,
}

impl StepReport {
    /// Process start, restore, dump and parse: everything that is not the step's own work.
    pub fn carry(&self) -> Option<Duration> {
        self.work.map(|w| self.wall.saturating_sub(w))
    }
}

/// The result of a whole build.
#[derive(Debug)]
pub struct BuildOutcome {
    /// The exit status to end with (the status of the step that ended the build).
    pub status: i32,
    pub steps: Vec<StepReport>,
    /// The state after each completed step, in order (setup first).
    pub states: Vec<(String, ShellState)>,
    /// Why the build ended where it did, for the log.
    pub ended_by: Option<String>,
    /// What happened to each phase with respect to the base checkpoint (empty without a
    /// checkpoint output).
    pub decisions: Vec<PhaseDecision>,
    /// Why a given checkpoint was not used at all.
    pub reuse_note: Option<String>,
}

/// Options that change how a build runs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `$0` and `$1` of stock bash while it sources setup.
    pub arg0: Option<PathBuf>,
    pub arg1: Option<PathBuf>,
    /// The builder binary, run by each step to capture process facts.
    pub helper: PathBuf,
    /// The derivation's outputs other than the hidden one (name, path).
    pub outputs: Vec<(String, PathBuf)>,
    /// An output the stdenv must not see (the `checkpoint` output the builder writes itself):
    /// stock builds of the same package have no such output, and `outputs` decides, e.g.,
    /// whether multiple-outputs.sh adds `--bindir`-style flags.
    pub hidden_output: Option<String>,
}

static CURRENT_GROUP: AtomicI32 = AtomicI32::new(0);
static RECEIVED_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Whether SIGPIPE was ignored when the builder started (see [`note_inherited_signals`]).
static SIGPIPE_INHERITED_IGNORED: AtomicBool = AtomicBool::new(false);

/// Notes how SIGPIPE was set when the process started, then ignores it (the builder wants
/// `EPIPE` from a closed pipe, not death). Called first thing in `main`, which is the
/// binary's own C `main`, so Rust's runtime has not changed SIGPIPE yet.
pub fn note_inherited_signals() {
    // SAFETY: reading the disposition into a zeroed struct we own, then setting a constant one.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut current) == 0 {
            SIGPIPE_INHERITED_IGNORED
                .store(current.sa_sigaction == libc::SIG_IGN, Ordering::SeqCst);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Makes `cmd`'s child start with SIGPIPE ignored if the builder started so (Rust resets it to
/// the default action in every child it spawns).
pub fn keep_inherited_signals(cmd: &mut Command) {
    if !SIGPIPE_INHERITED_IGNORED.load(Ordering::SeqCst) {
        return;
    }
    // SAFETY: the closure only calls signal(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            Ok(())
        });
    }
}

extern "C" fn forward_signal(sig: libc::c_int) {
    RECEIVED_SIGNAL.store(sig, Ordering::SeqCst);
    let group = CURRENT_GROUP.load(Ordering::SeqCst);
    if group > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(-group, sig);
        }
    }
}

/// Forwards termination signals to the running step's process group. A signal the builder
/// was started with ignored stays ignored, so every step inherits that as stock's bash does
/// (it lists such signals as `trap -- '' SIGHUP`); a handler would be reset to the default
/// action across exec instead.
fn install_signal_forwarding() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: sigaction with a null new action only reads the current disposition into
        // a zeroed struct we own.
        let ignored = unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == libc::SIG_IGN
        };
        if ignored {
            continue;
        }
        // SAFETY: installing a handler that only touches atomics and calls kill.
        unsafe {
            libc::signal(sig, forward_signal as *const () as libc::sighandler_t);
        }
    }
    // Orphaned background jobs of a phase come back to us, so they can be reaped and ended.
    // SAFETY: prctl with a constant option and argument.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Runs every step of the build.
///
/// When anything goes wrong once content of an earlier checkpoint has entered the build (an
/// import, a restore, the incremental restore, a snapshot or a step after them), the build
/// does not end there: the reason is logged, what was restored is discarded (processes of
/// the steps so far ended, outputs removed, the build directory put back to what Nix gave,
/// the checkpoint emptied), and the build runs again from scratch without a base. Only an
/// error of that clean run is the builder's (docs/trust.md, "Falling back").
pub fn run_build(
    env: &BuildEnvironment,
    options: &BuildOptions,
    mut recorder: Option<&mut Recorder>,
    bases: &[BaseCheckpoint],
) -> Result<BuildOutcome, RunError> {
    install_signal_forwarding();
    // What a clean start has in the build directory, to come back to.
    let initial = match (&recorder, bases.is_empty()) {
        (Some(_), false) => Some(InitialTree::capture(&env.build_top)),
        _ => None,
    };
    let mut groups = Vec::new();
    let mut base_used: Option<PathBuf> = None;
    let first = run_steps(
        env,
        options,
        recorder.as_deref_mut(),
        bases,
        &mut groups,
        &mut base_used,
    );
    let (error, which) = match (first, base_used) {
        (Err(e), Some(dir)) => (e, dir.display().to_string()),
        (other, _) => return other,
    };
    let reason = error_chain(&error);
    eprintln!(
        "checkpoint-builder: checkpoint {which} could not be used: {reason}; discarding what was \
         restored and building from scratch"
    );
    let initial = match initial {
        Some(Ok(tree)) => tree,
        Some(Err(e)) => {
            eprintln!(
                "checkpoint-builder: cannot build from scratch: the build directory's first \
                 content was not kept ({e})"
            );
            return Err(error);
        }
        None => return Err(error),
    };
    end_all_groups(&groups);
    let mut clean_start = || -> Result<(), String> {
        for (name, path) in &options.outputs {
            remove_tree(path).map_err(|e| format!("output `{name}`: {}", error_chain(&e)))?;
        }
        initial
            .put_back(&env.build_top)
            .map_err(|e| format!("the build directory: {e}"))?;
        if let Some(rec) = recorder.as_deref_mut() {
            rec.restart()
                .map_err(|e| format!("the checkpoint: {}", error_chain(&e)))?;
        }
        Ok(())
    };
    if let Err(why) = clean_start() {
        eprintln!("checkpoint-builder: cannot discard what was restored: {why}");
        return Err(error);
    }
    let mut groups = Vec::new();
    let mut outcome = run_steps(env, options, recorder, &[], &mut groups, &mut None)?;
    outcome.reuse_note = Some(format!(
        "checkpoint {which} not reused: {reason}; built from scratch"
    ));
    for d in &mut outcome.decisions {
        d.reason = "ran: the checkpoint could not be used (see above), built from scratch".into();
    }
    Ok(outcome)
}

/// One run of every step; `base_used` names the base once its content enters the build.
fn run_steps(
    env: &BuildEnvironment,
    options: &BuildOptions,
    mut recorder: Option<&mut Recorder>,
    bases: &[BaseCheckpoint],
    groups: &mut Vec<i32>,
    base_used: &mut Option<PathBuf>,
) -> Result<BuildOutcome, RunError> {
    let mut dump = MemFile::new("checkpoint-builder-dump").map_err(RunError::MemFile)?;
    let mut restore = MemFile::new("checkpoint-builder-restore").map_err(RunError::MemFile)?;
    let mut script_file = MemFile::new("checkpoint-builder-script").map_err(RunError::MemFile)?;
    let mut step_file = MemFile::new("checkpoint-builder-step").map_err(RunError::MemFile)?;
    let channel = Channel {
        nonce: nonce(),
        dump_fd: dump.fd(),
        restore_fd: restore.fd(),
        step_fd: step_file.fd(),
        helper: options.helper.to_string_lossy().into_owned(),
        // Stock's `source-stdenv.sh` sources the builder script (`$1`).
        nested: options.arg1.is_some(),
    };
    let passthrough = env.non_identifier_vars();
    let mut outcome = BuildOutcome {
        status: 0,
        steps: Vec::new(),
        states: Vec::new(),
        ended_by: None,
        decisions: Vec::new(),
        reuse_note: None,
    };

    // Setup: exactly stock's environment (less a hidden output) and `bash -e`.
    let setup_env = match &options.hidden_output {
        Some(name) => hide_output(&env.vars, name),
        None => env.vars.clone(),
    };
    let arg0 = options
        .arg0
        .clone()
        .unwrap_or_else(|| env.bash.clone())
        .into_os_string();
    let setup_script = driver::setup_script(&channel, options.hidden_output.as_deref());
    let mut args = script_args(&mut script_file, &mut step_file, true, &arg0, &setup_script)?;
    if let Some(a1) = &options.arg1 {
        args.push(a1.clone().into_os_string());
    }
    dump.clear().map_err(RunError::MemFile)?;
    let step = run_step(env, "setup", &args, Some(&setup_env), None, groups)?;
    let setup = finish_step(&mut dump, "setup", step, &mut outcome)?;
    let Some((setup_state, phases, setup_status)) =
        setup.map(|(s, sections_phases, st)| (s, sections_phases.unwrap_or_default(), st))
    else {
        end_groups_after_failure(&outcome, groups);
        return Ok(outcome);
    };
    let mut state = setup_state.clone();
    let mut last_status = setup_status;
    let mut start = 0;
    // The base and its path rewrites, for an incremental restore after patchPhase.
    let mut incremental: Option<(&BaseCheckpoint, Vec<RewritePair>)> = None;
    if let Some(rec) = recorder.as_deref_mut() {
        rec.phases = phases.clone();
        // Every candidate base (a given checkpoint, or development cache entries, newest
        // first) is planned; the deepest reuse wins, the newest on a tie.
        let mut plan: Option<(&BaseCheckpoint, Vec<RewritePair>, reuse::ReusePlan)> = None;
        for base in bases {
            match path_rewrites(base, &options.outputs, &env.build_top)
                .and_then(|rewrites| safe_after_rewrites(base, rewrites))
            {
                Err(reason) => {
                    outcome.reuse_note = Some(format!(
                        "checkpoint {} not reused: {reason}",
                        base.dir.display()
                    ));
                }
                Ok(rewrites) => {
                    let base_outputs: Vec<Vec<u8>> = base.outputs.values().cloned().collect();
                    let candidate = reuse::plan(
                        &base.layers,
                        &base_outputs,
                        &setup_state,
                        rec.output_paths(),
                        &rewrites,
                        &phases,
                        rec.strict(),
                    );
                    if plan
                        .as_ref()
                        .is_none_or(|(_, _, p)| candidate.depth > p.depth)
                    {
                        plan = Some((base, rewrites, candidate));
                    }
                }
            }
        }
        if let Some((base, rewrites, _)) = &plan {
            if let Some(note) = &base.trust_note {
                eprintln!("checkpoint-builder: {note}");
            }
            incremental = Some((base, rewrites.clone()));
            if bases.len() > 1 {
                outcome.reuse_note = Some(format!("base chosen: {}", base.dir.display()));
            }
        }
        match plan {
            Some((base, rewrites, plan)) if plan.depth > 0 => {
                *base_used = Some(base.dir.clone());
                announce_restore(base, &phases[..plan.depth]);
                rec.resume(
                    base,
                    plan.depth as u32,
                    &rewrites,
                    &env.build_top,
                    &options.outputs,
                )
                .map_err(|source| RunError::Checkpoint {
                    step: format!("restore of {}", phases[plan.depth - 1]),
                    source,
                })?;
                state = reuse::with_variables_from(
                    &reuse::rewrite_state(&base.layers[plan.depth].state, &rewrites),
                    &plan.changed_variables,
                    &setup_state,
                );
                last_status = 0;
                start = plan.depth;
                outcome.decisions = plan.decisions;
                announce_restored_phases(
                    phases[..start]
                        .iter()
                        .zip(base.layers.iter().map(|l| &l.state)),
                    &outcome.decisions,
                );
            }
            other => {
                record(rec, "setup", None, &setup_state, setup_status, &outcome)?;
                outcome.decisions = match other {
                    Some((_, _, plan)) => plan.decisions,
                    None => phases
                        .iter()
                        .map(|p| PhaseDecision {
                            phase: p.clone(),
                            reused: false,
                            reason: if !bases.is_empty() {
                                "ran: checkpoint not reused".into()
                            } else {
                                "ran: no earlier checkpoint to reuse".into()
                            },
                        })
                        .collect(),
                };
            }
        }
    }

    let mut index = start;
    while index < phases.len() {
        let phase = &phases[index];
        index += 1;
        if !phase_is_defined(&state, phase) {
            eprintln!(
                "checkpoint-builder: phase `{phase}` is neither a non-empty variable nor a function; \
                 bash will fail with status 127, as the stock builder does"
            );
        }
        let restore_text = restore_script(&state);
        restore
            .set(restore_text.as_bytes())
            .map_err(RunError::MemFile)?;
        dump.clear().map_err(RunError::MemFile)?;
        trace_file(&format!("{phase}.restore.sh"), restore_text.as_bytes());
        let script = driver::phase_script(&channel, &state, phase);
        let args = script_args(&mut script_file, &mut step_file, false, &arg0, &script)?;
        let step = run_step(
            env,
            phase,
            &args,
            None,
            Some((&passthrough, &state)),
            groups,
        )?;
        match finish_step(&mut dump, phase, step, &mut outcome)? {
            Some((mut next, _, status)) => {
                // Nothing runs at the levels around genericBuild while the phases do.
                next.outer_traps = state.outer_traps.clone();
                if let Some(rec) = recorder.as_deref_mut() {
                    record(rec, phase, Some(&state), &next, status, &outcome)?;
                }
                state = next;
                last_status = status;
                if phase == "patchPhase" {
                    if let (Some((base, rewrites)), Some(rec)) =
                        (incremental.take(), recorder.as_deref_mut())
                    {
                        *base_used = Some(base.dir.clone());
                        eprint!("{}", nix_log::incremental_line(&base.dir.to_string_lossy()));
                        let resumed = try_resume(
                            base,
                            &rewrites,
                            &phases,
                            index - 1,
                            &state,
                            rec,
                            &env.build_top,
                            &options.outputs,
                        )
                        .map_err(|reason| RunError::Incremental { reason })?;
                        match resumed {
                            Ok(resumed) => {
                                for (p, before, after) in &resumed.adopted {
                                    rec.next_layer_taken_over = true;
                                    record(rec, p, Some(before), after, 0, &outcome)?;
                                }
                                for d in resumed.decisions {
                                    if let Some(slot) =
                                        outcome.decisions.iter_mut().find(|x| x.phase == d.phase)
                                    {
                                        *slot = d;
                                    }
                                }
                                announce_restored_phases(
                                    resumed.adopted.iter().map(|(p, before, _)| (p, before)),
                                    &outcome.decisions,
                                );
                                state = resumed.state;
                                last_status = 0;
                                index = resumed.next_phase;
                            }
                            Err(reason) => {
                                outcome.reuse_note = Some(format!(
                                    "no incremental restore after patchPhase: {reason}"
                                ));
                            }
                        }
                    }
                }
            }
            None => {
                if outcome.status != 0 {
                    if let Some(rec) = recorder.as_deref_mut() {
                        // The tree as the failing phase left it, with the state it started
                        // from, so the failure can be entered (`shell --at PHASE`).
                        let name = format!("failed:{phase}");
                        record(rec, &name, Some(&state), &state, outcome.status, &outcome)?;
                    }
                }
                end_groups_after_failure(&outcome, groups);
                return Ok(outcome);
            }
        }
    }

    // Final step: the EXIT trap (exitHandler) runs once, with the last step's status.
    restore
        .set(restore_script(&state).as_bytes())
        .map_err(RunError::MemFile)?;
    dump.clear().map_err(RunError::MemFile)?;
    let script = driver::final_script(&channel, &state, last_status, !phases.is_empty());
    let args = script_args(&mut script_file, &mut step_file, false, &arg0, &script)?;
    let step = run_step(
        env,
        "exit",
        &args,
        None,
        Some((&passthrough, &state)),
        groups,
    )?;
    outcome.status = step.status;
    outcome.steps.push(StepReport {
        name: "(exit)".into(),
        wall: step.wall,
        work: None,
    });
    end_groups_after_failure(&outcome, groups);
    Ok(outcome)
}

/// Arguments that make bash run `script` as a script file (not `-c`, which would add `c` to
/// `$-`), with `$0` set to what stock's `$0` is (`BASH_ARGV0` assigns `$0`).
fn script_args(
    file: &mut MemFile,
    step_file: &mut MemFile,
    errexit: bool,
    arg0: &OsString,
    script: &driver::StepCode,
) -> Result<Vec<OsString>, RunError> {
    use std::os::unix::ffi::OsStrExt;
    let mut text = format!(
        "BASH_ARGV0={}\n",
        crate::shell::quote::quote(arg0.as_bytes())
    );
    text.push_str(&script.main);
    file.set(text.as_bytes()).map_err(RunError::MemFile)?;
    step_file
        .set(script.inner.as_deref().unwrap_or("").as_bytes())
        .map_err(RunError::MemFile)?;
    let path = format!("/proc/{}/fd/{}", std::process::id(), file.fd());
    let mut args: Vec<OsString> = Vec::new();
    if errexit {
        args.push("-e".into());
    }
    args.push(path.into());
    Ok(args)
}

/// With `CHECKPOINT_BUILDER_TRACE=DIR` in the builder's environment (not the derivation's: a
/// debugging aid outside Nix), every restore script and state dump is also written to DIR.
fn trace_file(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("CHECKPOINT_BUILDER_TRACE") {
        let _ = std::fs::write(std::path::Path::new(&dir).join(name), bytes);
    }
}

fn record(
    recorder: &mut Recorder,
    step: &str,
    before: Option<&ShellState>,
    after: &ShellState,
    status: i32,
    outcome: &BuildOutcome,
) -> Result<(), RunError> {
    let seconds = outcome
        .steps
        .last()
        .and_then(|s| s.work)
        .map(|w| w.as_secs_f64());
    let started = Instant::now();
    let summary = recorder
        .record(step, before, after, status, seconds)
        .map_err(|source| RunError::Checkpoint {
            step: step.to_owned(),
            source,
        })?;
    if started.elapsed() > nix_log::SLOW_SNAPSHOT {
        eprint!(
            "{}",
            nix_log::slow_snapshot_line(
                step,
                started.elapsed(),
                summary.files_hashed,
                summary.bytes_hashed
            )
        );
    }
    Ok(())
}

/// Before restoring `phases` from `base`: what the restore writes, so a wait is explained.
fn announce_restore(base: &BaseCheckpoint, phases: &[String]) {
    let (Some(first), Some(last)) = (phases.first(), phases.last()) else {
        return;
    };
    let (files, bytes) = base
        .checkpoint
        .state_after(phases.len() as u32)
        .map(|s| nix_log::tree_size(&s))
        .unwrap_or_default();
    eprint!(
        "{}",
        nix_log::restoring_line(files, bytes, first, last, &base.dir.to_string_lossy())
    );
}

/// After a restore: each restored phase (with the state it started from) announced as a
/// phase (`@nix setPhase`) with why, unless stdenv skips it silently (no header when run).
fn announce_restored_phases<'a>(
    phases: impl Iterator<Item = (&'a String, &'a ShellState)>,
    decisions: &[PhaseDecision],
) {
    for (phase, before) in phases {
        if nix_log::stdenv_skips(phase, before) {
            continue;
        }
        let reason = decisions
            .iter()
            .find(|d| &d.phase == phase)
            .map_or("restored", |d| d.reason.as_str());
        nix_log::announce_restored(phase, reason);
    }
}

/// The environment without output `name`: its variable is dropped and it is removed from
/// `outputs`, so the stdenv sees what a stock build without that output sees.
fn hide_output(vars: &[(OsString, OsString)], name: &str) -> Vec<(OsString, OsString)> {
    vars.iter()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| {
            if k == "outputs" {
                let kept: Vec<&str> = v
                    .to_str()
                    .unwrap_or("")
                    .split_whitespace()
                    .filter(|o| *o != name)
                    .collect();
                (k.clone(), OsString::from(kept.join(" ")))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

/// `rewrites`, when every layer's shell state of `base` is still safe to restore once moved
/// to this build's paths: the earlier paths being rewritten are the checkpoint's own claim,
/// and replacing them could change how bash reads a function or trap text that was safe
/// before (design §6; see `shell::validate`).
fn safe_after_rewrites(
    base: &BaseCheckpoint,
    rewrites: Vec<RewritePair>,
) -> Result<Vec<RewritePair>, String> {
    for layer in &base.layers {
        crate::shell::validate::validate_state(&reuse::rewrite_state(&layer.state, &rewrites))
            .map_err(|e| {
                format!(
                    "layer `{}`: its shell state moved to this build's paths is unsafe to restore: {e}",
                    layer.name
                )
            })?;
    }
    Ok(rewrites)
}

/// True when `runPhase` will find code for `phase`: a non-empty variable or a function.
fn phase_is_defined(state: &ShellState, phase: &str) -> bool {
    let var_nonempty = state.variable(phase).is_some_and(|v| match &v.value {
        Value::Scalar(s) => !s.as_bytes().is_empty(),
        Value::Indexed(e) => e.iter().any(|(i, v)| *i == 0 && !v.as_bytes().is_empty()),
        _ => false,
    });
    var_nonempty || state.has_function(phase)
}

struct StepRun {
    status: i32,
    wall: Duration,
}

fn run_step(
    env: &BuildEnvironment,
    name: &str,
    args: &[OsString],
    full_env: Option<&Vec<(OsString, OsString)>>,
    restored: Option<(&Vec<(OsString, OsString)>, &ShellState)>,
    groups: &mut Vec<i32>,
) -> Result<StepRun, RunError> {
    let started = Instant::now();
    let mut cmd = Command::new(&env.bash);
    cmd.args(args).env_clear();
    if let Some(vars) = full_env {
        cmd.envs(vars.iter().map(|(k, v)| (k, v)));
    }
    let (umask, limits) = match restored {
        Some((passthrough, state)) => {
            cmd.envs(passthrough.iter().map(|(k, v)| (k, v)));
            (Some(state.umask), state.limits.clone())
        }
        None => (None, Vec::new()),
    };
    keep_inherited_signals(&mut cmd);
    // SAFETY: the closure only makes async-signal-safe syscalls (setpgid, umask, setrlimit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(mask) = umask {
                libc::umask(mask as libc::mode_t);
            }
            for l in &limits {
                let lim = libc::rlimit {
                    rlim_cur: l.soft,
                    rlim_max: l.hard,
                };
                // Best effort: a limit bash could not raise either stays as inherited.
                libc::setrlimit(l.resource as libc::__rlimit_resource_t, &lim);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| RunError::Spawn {
        bash: env.bash.clone(),
        step: name.to_owned(),
        source,
    })?;
    let pid = child.id() as i32;
    groups.push(pid);
    CURRENT_GROUP.store(pid, Ordering::SeqCst);
    let status = loop {
        match child.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(RunError::Spawn {
                    bash: env.bash.clone(),
                    step: name.to_owned(),
                    source,
                })
            }
        }
    };
    CURRENT_GROUP.store(0, Ordering::SeqCst);
    reap_orphans();
    let status = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(StepRun {
        status,
        wall: started.elapsed(),
    })
}

type StepResult = Option<(ShellState, Option<Vec<String>>, i32)>;

/// Reads a step's dump. `None` when the step ended the build (no `end` marker).
fn finish_step(
    dump: &mut MemFile,
    name: &str,
    run: StepRun,
    outcome: &mut BuildOutcome,
) -> Result<StepResult, RunError> {
    let parse_started = Instant::now();
    let bytes = dump.read_all().map_err(|source| RunError::DumpIo {
        step: name.to_owned(),
        source,
    })?;
    trace_file(&format!("{name}.dump"), &bytes);
    let nonce = current_nonce(&bytes);
    let sections = DumpSections::split(&bytes, &nonce);
    let times = |name: &str| -> Option<f64> {
        let body = sections.get(name)?;
        let text = String::from_utf8_lossy(body);
        text.split_whitespace().last()?.parse().ok()
    };
    let work = match (times("t0"), times("status")) {
        (Some(a), Some(b)) if b >= a => Some(Duration::from_secs_f64(b - a)),
        _ => None,
    };
    let completed = sections.get("end").is_some() && run.status == 0;
    if !completed {
        outcome.status = run.status;
        outcome.ended_by = Some(if run.status == 0 {
            format!("`{name}` ended the build successfully (exit inside the step)")
        } else {
            format!("`{name}` failed with status {}", run.status)
        });
        outcome.steps.push(StepReport {
            name: name.to_owned(),
            wall: run.wall,
            work,
        });
        return Ok(None);
    }
    let mut state = parse_state(&sections).map_err(|source| RunError::Dump {
        step: name.to_owned(),
        source,
    })?;
    let status: i32 = sections
        .get("status")
        .and_then(|b| {
            String::from_utf8_lossy(b)
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let phases = sections.get("phases").map(|body| {
        body.split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect::<Vec<_>>()
    });
    if let Some(pre) = sections.get("pre-generic") {
        // genericBuild's loop leaves `curPhase` set; stock has not run that loop yet here.
        if !pre
            .windows(9)
            .any(|w| w == b"curPhase=" || w == b" curPhase")
        {
            state.variables.retain(|v| v.name != "curPhase");
        }
    }
    outcome.steps.push(StepReport {
        name: name.to_owned(),
        wall: run.wall + parse_started.elapsed(),
        work,
    });
    outcome.states.push((name.to_owned(), state.clone()));
    Ok(Some((state, phases, status)))
}

fn current_nonce(dump: &[u8]) -> String {
    // The dump starts with "\n#CPB-<nonce> "; read it back rather than threading it through.
    let text = &dump[..dump.len().min(64)];
    let start = text.windows(5).position(|w| w == b"#CPB-").map(|p| p + 5);
    match start {
        Some(s) => {
            let end = text[s..].iter().position(|&b| b == b' ').map(|e| s + e);
            end.map(|e| String::from_utf8_lossy(&text[s..e]).into_owned())
                .unwrap_or_default()
        }
        None => String::new(),
    }
}

/// A fresh random marker for dump sections.
fn nonce() -> String {
    let mut buf = [0u8; 12];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    buf[..8]
        .iter_mut()
        .zip(t.to_le_bytes())
        .for_each(|(b, t)| *b ^= t);
    crate::shell::bytes::to_hex(&buf)
}

fn reap_orphans() {
    loop {
        let mut status = 0;
        // SAFETY: non-blocking wait for any child; status is a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

/// Ends every process group started so far (before a build starts again from scratch).
fn end_all_groups(groups: &[i32]) {
    for &g in groups {
        // SAFETY: signalling a process group we created; ESRCH when it is gone is fine.
        unsafe {
            libc::kill(-g, libc::SIGKILL);
        }
    }
    reap_orphans();
}

/// After a failed build, ends every process group it started (background jobs included). After
/// a successful one they are left running, as stock leaves them, for Nix to end.
fn end_groups_after_failure(outcome: &BuildOutcome, groups: &[i32]) {
    if outcome.status == 0 {
        return;
    }
    for &g in groups {
        // SAFETY: signalling a process group we created; ESRCH when it is gone is fine.
        unsafe {
            libc::kill(-g, libc::SIGKILL);
        }
    }
    reap_orphans();
}

/// The per-phase table printed on stderr at the end of a build.
pub fn format_report(steps: &[StepReport]) -> String {
    let mut out =
        String::from("checkpoint-builder: step                      seconds   carry ms\n");
    for s in steps {
        let work = s.work.unwrap_or(s.wall);
        let carry = s
            .carry()
            .map(|c| format!("{:10.1}", c.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| format!("{:>10}", "-"));
        out.push_str(&format!(
            "checkpoint-builder: {:<24} {:9.3} {carry}\n",
            s.name,
            work.as_secs_f64()
        ));
    }
    out
}
