//! Runs a build: the setup step, the phases, and the final step, carrying the shell state
//! between them (see [`crate::shell::driver`] for the protocol): a phase process goes on into
//! the next phase when that one starts from the state it dumped ([`crate::build::waiting`]),
//! and a new process is restored from the state otherwise.
//!
//! Effectful shell around the pure core in [`crate::shell`]: spawns bash in its own process
//! group, forwards termination signals to it, reads each step's state dump, and reports
//! per-phase timings.

use crate::build::environment::BuildEnvironment;
use crate::build::memfile::MemFile;
use crate::build::nix_log;
use crate::build::recorder::{self, ReadRecord, Recorder, StoredRecord, TreeMoment};
use crate::build::signals;
use crate::build::waiting::{self, PhasePipes, StepEnd, Waiting};
use crate::checkpoint::{CheckpointError, Gate, Holding, RelPath, RewritePair};
use crate::reuse::base::{
    error_chain, path_rewrites, remove_tree, BaseCheckpoint, InitialTree, PathMoves,
};
use crate::reuse::debug_info;
use crate::reuse::incremental::build_environment::EnvironmentCheck;
use crate::reuse::incremental::rules::short_list;
use crate::reuse::incremental::working_copy::{self, WorkingCopy};
use crate::reuse::incremental::{try_resume, ResumeError, Resumed, Resumption};
use crate::reuse::plan::{self, PhaseDecision};
use crate::reuse::stale;
use crate::shell::driver::{self, Channel};
use crate::shell::phase_skip;
use crate::shell::restore::restore_script;
use crate::shell::state::{parse_state, DumpError, DumpSections, ShellState};
use crate::shell::Value;
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RunError {
    #[error("cannot create the builder's memory file")]
    MemFile(#[source] std::io::Error),
    #[error("cannot create the pipes the phase processes wait on")]
    Pipes(#[source] std::io::Error),
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
    #[error(
        "{} keeps gcc's debug information with this build's -frandom-seed, and objects compiled \
         with the earlier build's seed were reused: their debug strings' order would differ \
         from a clean build's",
        file.display()
    )]
    DebugInfoAcrossSeeds { file: PathBuf },
    #[error("cannot scan the outputs for debug information")]
    OutputScan(#[source] std::io::Error),
    #[error("the incremental restore failed")]
    Incremental(#[source] ResumeError),
    #[error(
        "buildPhase ended with variables that differ from the earlier build's without a change \
         the rules judged ({names}): a phase derived them, and what the build tool made with \
         the earlier values may have been kept"
    )]
    EnvironmentMoved { names: String },
    #[error(
        "the code buildPhase ran expands variables that changed ({names}), where make or \
         ninja would not see the new values: what the build tool made with the earlier ones \
         may have been kept"
    )]
    ChangedValueExpanded { names: String },
    #[error(
        "{phase} failed (status {status}) after build products that held the earlier build's \
         values were left out ({left_out}); one may be something the build does not remake"
    )]
    FailedAfterLeavingOut {
        phase: String,
        status: i32,
        left_out: String,
    },
    #[error("a blob of the base that no restore read is wrong")]
    BaseContents(#[source] crate::checkpoint::CheckpointError),
    #[error("the {step} failed")]
    Restore {
        step: String,
        #[source]
        source: crate::checkpoint::CheckpointError,
    },
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
    bases: Bases<'_>,
) -> Result<BuildOutcome, RunError> {
    signals::install_forwarding();
    // What a clean start has in the build directory, to come back to.
    let initial = match (&recorder, bases.may_hold_any()) {
        (Some(_), true) => Some(InitialTree::capture(&env.build_top)),
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
    signals::end_groups(&groups);
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
    let mut outcome = run_steps(
        env,
        options,
        recorder,
        Bases::Ready(Vec::new()),
        &mut groups,
        &mut None,
    )?;
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
    bases: Bases<'_>,
    groups: &mut Vec<i32>,
    base_used: &mut Option<PathBuf>,
) -> Result<BuildOutcome, RunError> {
    let mut dump = MemFile::new("checkpoint-builder-dump").map_err(RunError::MemFile)?;
    let mut restore = MemFile::new("checkpoint-builder-restore").map_err(RunError::MemFile)?;
    let mut script_file = MemFile::new("checkpoint-builder-script").map_err(RunError::MemFile)?;
    let mut step_file = MemFile::new("checkpoint-builder-step").map_err(RunError::MemFile)?;
    let mut next_file = MemFile::new("checkpoint-builder-next").map_err(RunError::MemFile)?;
    let scratch_file = MemFile::new("checkpoint-builder-scratch").map_err(RunError::MemFile)?;
    let mut pipes = PhasePipes::new().map_err(RunError::Pipes)?;
    signals::set_waiting(0);
    let channel = Channel {
        nonce: nonce(),
        dump_fd: dump.fd(),
        restore_fd: restore.fd(),
        step_fd: step_file.fd(),
        helper: options.helper.to_string_lossy().into_owned(),
        paused_fd: pipes.paused_fd(),
        go_fd: pipes.go_fd(),
        next_fd: next_file.fd(),
        scratch_fd: scratch_file.fd(),
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
        if outcome.status != 0 {
            signals::end_groups(groups);
        }
        return Ok(outcome);
    };
    let bases = bases.resolve(recorder.as_deref_mut());
    let bases = bases.as_slice();
    let mut start = Start {
        state: setup_state.clone(),
        index: 0,
        last_status: setup_status,
        incremental: None,
        reused_objects_seeds: Vec::new(),
        working_copy: None,
        environment: None,
        chosen: None,
    };
    if let Some(rec) = recorder.as_deref_mut() {
        start = start_from_bases(
            rec,
            env,
            options,
            bases,
            (&setup_state, setup_status),
            &phases,
            &mut outcome,
            base_used,
        )?;
    }
    std::thread::scope(|scope| {
        let Start {
            mut state,
            index: start,
            mut last_status,
            mut incremental,
            mut reused_objects_seeds,
            mut working_copy,
            mut environment,
            chosen,
        } = start;
        // The chosen base's blobs that no restore read are checked once no restore from it is
        // pending (before the first phase, or after patchPhase when an incremental restore may
        // follow it), on a thread of their own while the phases run; the build waits for that
        // check before it ends.
        let mut unchecked = chosen;
        let mut unread_check = None;
        // The layer of the last phase, stored while the next phase runs; the recorder is
        // its thread's until it is settled.
        let mut storing: Option<StoringLayer> = None;
        // The last phase's process, waiting to run the next phase if that one starts from
        // the state it dumped.
        let mut waiting: Option<Waiting> = None;
        // The build products left out of a rerun's tree (a short list, empty when none): a phase
        // that then fails may have missed one nothing remakes, and the build tries again from
        // scratch.
        let left_out_of = |copy: &Option<WorkingCopy>| {
            copy.as_ref()
                .map(|c| short_list(&c.left_out, 5))
                .unwrap_or_default()
        };
        let mut left_out = left_out_of(&working_copy);

        let mut index = start;
        while index < phases.len() {
            // An incremental restore follows patchPhase, if patchPhase is still to run.
            let restore_pending =
                incremental.is_some() && phases[index..].iter().any(|p| p == "patchPhase");
            if !restore_pending {
                unread_check = unread_check.or_else(|| UnreadCheck::start(scope, unchecked.take()));
            }
            let phase = &phases[index];
            index += 1;
            let skipped = phase_skip::skipped_phase_state(&state, phase);
            let started_process = skipped.is_none();
            let ran = match skipped {
                // The stdenv's runPhase would return at once: no process to start.
                Some(next) => {
                    outcome.steps.push(StepReport {
                        name: phase.clone(),
                        wall: Duration::ZERO,
                        work: Some(Duration::ZERO),
                    });
                    outcome.states.push((phase.clone(), next.clone()));
                    Some((next, None, 0))
                }
                None => run_phase_step(
                    env,
                    &channel,
                    (
                        &mut dump,
                        &mut restore,
                        &mut script_file,
                        &mut step_file,
                        &mut next_file,
                    ),
                    (&arg0, &passthrough),
                    (&mut pipes, &mut waiting),
                    &state,
                    phase,
                    groups,
                    &mut outcome,
                )?,
            };
            let ended = TreeMoment::now();
            // Phases rerun over the earlier tree leave its build products in theirs.
            let taken_over = working_copy
                .as_ref()
                .is_some_and(|c| index <= c.build_phase);
            match ran {
                // A phase that started no process, while the last phase's layer is still
                // being stored: its layer (the same trees) is recorded after that one, without
                // waiting for it now.
                Some((mut next, _, status))
                    if !started_process
                        && storing.as_ref().is_some_and(|s| s.may_queue(ended))
                        && working_copy.as_ref().is_none_or(|c| index < c.build_phase)
                        && environment.as_ref().is_none_or(|c| index <= c.build_phase)
                        && !(phase == "patchPhase" && incremental.is_some()) =>
                {
                    next.outer_traps = state.outer_traps.clone();
                    let queued = QueuedRecord {
                        step: phase.clone(),
                        before: state.clone(),
                        after: next.clone(),
                        status,
                        seconds: step_seconds(&outcome),
                        taken_over,
                        ended,
                    };
                    if let Some(storing) = storing.as_mut() {
                        storing.queue(queued);
                    }
                    state = next;
                    last_status = status;
                }
                Some((mut next, _, status)) => {
                    StoringLayer::settle(&mut storing, &mut recorder)?;
                    // Nothing runs at the levels around genericBuild while the phases do.
                    next.outer_traps = state.outer_traps.clone();
                    // The phase's layer, read and not yet stored.
                    let mut read = None;
                    if let Some(rec) = recorder.as_deref_mut() {
                        rec.next_layer_taken_over |= taken_over;
                        // New contents are held in memory for a store beside the next phase
                        // only when a later phase starts a process.
                        let hold = phases[index..].iter().any(|p| !phase_skip::skips(&next, p));
                        read = Some(read_record(
                            rec,
                            phase,
                            (Some(&state), &next, status),
                            &outcome,
                            ended,
                            hold,
                        )?);
                        if let Some(copy) = working_copy.take_if(|c| index == c.build_phase) {
                            store_record(rec, read.take())?;
                            let products =
                                settle_rerun(rec, &copy, &next, env, options, &mut outcome)?;
                            if !products.is_empty() {
                                let mut all = copy.left_out.clone();
                                all.extend(products);
                                left_out = short_list(&all, 5);
                            }
                        }
                        if let Some(check) = environment.take_if(|c| index == c.build_phase + 1) {
                            let unjudged = check.unjudged(&next, rec.output_paths());
                            if !unjudged.differing.is_empty() {
                                return Err(RunError::EnvironmentMoved {
                                    names: short_list(&unjudged.differing, 5),
                                });
                            }
                            if !unjudged.expanded.is_empty() {
                                return Err(RunError::ChangedValueExpanded {
                                    names: short_list(&unjudged.expanded, 5),
                                });
                            }
                        }
                    }
                    state = next;
                    last_status = status;
                    if phase == "patchPhase" {
                        if let (Some((base, moves)), Some(rec)) =
                            (incremental.take(), recorder.as_deref_mut())
                        {
                            store_record(rec, read.take())?;
                            *base_used = Some(base.dir.clone());
                            let resumption = resume_after_patch(
                                rec,
                                env,
                                options,
                                base,
                                &moves,
                                &phases,
                                index - 1,
                                &state,
                                &mut outcome,
                            )?;
                            if let Some((resumed, adopted)) = resumption {
                                read = adopted;
                                reused_objects_seeds =
                                    debug_info::changed_seeds(&base.outputs, &options.outputs);
                                state = resumed.state;
                                last_status = 0;
                                index = resumed.next_phase;
                                left_out = short_list(&resumed.left_out, 5);
                                working_copy = resumed.working_copy;
                                environment = Some(resumed.environment);
                            }
                        }
                    }
                    if let Some(read) = read {
                        let rec = recorder
                            .take()
                            .expect("a layer is read only with a recorder");
                        storing = Some(StoringLayer::start(scope, rec, read, phase));
                    }
                }
                None => {
                    StoringLayer::settle(&mut storing, &mut recorder)?;
                    // The build ends here: a check not started yet (a restore was pending)
                    // runs now.
                    let check = unread_check
                        .take()
                        .or_else(|| UnreadCheck::start(scope, unchecked.take()));
                    UnreadCheck::finish(check, recorder.as_deref_mut(), base_used)?;
                    if outcome.status != 0 && !left_out.is_empty() {
                        return Err(RunError::FailedAfterLeavingOut {
                            phase: phase.clone(),
                            status: outcome.status,
                            left_out,
                        });
                    }
                    if outcome.status != 0 {
                        if let Some(rec) = recorder.as_deref_mut() {
                            // The tree as the failing phase left it, with the state it started
                            // from, so the failure can be entered (`shell --at PHASE`).
                            let name = format!("failed:{phase}");
                            record(rec, &name, Some(&state), &state, outcome.status, &outcome)?;
                        }
                    }
                    if outcome.status != 0 {
                        signals::end_groups(groups);
                    }
                    return Ok(outcome);
                }
            }
        }

        StoringLayer::settle(&mut storing, &mut recorder)?;
        // A check not started yet (no phase ran after the restores) starts here.
        let check = unread_check.or_else(|| UnreadCheck::start(scope, unchecked.take()));
        UnreadCheck::finish(check, recorder, base_used)?;
        // Final step: the EXIT trap (exitHandler) runs once, with the last step's status, in
        // the last phase's process when the build ends from the state it dumped.
        let step = match waiting.take() {
            Some(w) if waiting::goes_on(&w.state, &state) => {
                next_file
                    .set(driver::final_code(&state, last_status).as_bytes())
                    .map_err(RunError::MemFile)?;
                let (mut child, started) = go_on(env, "exit", w, &mut pipes)?;
                let status = wait_for_end(env, "exit", &mut child)?;
                StepRun {
                    status,
                    wall: started.elapsed(),
                }
            }
            other => {
                if let Some(w) = other {
                    leave(env, w, &mut pipes, &mut next_file)?;
                }
                restore
                    .set(restore_script(&state).as_bytes())
                    .map_err(RunError::MemFile)?;
                dump.clear().map_err(RunError::MemFile)?;
                let script =
                    driver::final_script(&channel, &state, last_status, !phases.is_empty());
                let args = script_args(&mut script_file, &mut step_file, false, &arg0, &script)?;
                run_step(
                    env,
                    "exit",
                    &args,
                    None,
                    Some((&passthrough, &state)),
                    groups,
                )?
            }
        };
        outcome.status = step.status;
        outcome.steps.push(StepReport {
            name: "(exit)".into(),
            wall: step.wall,
            work: None,
        });
        if outcome.status != 0 {
            signals::end_groups(groups);
        }
        if outcome.status == 0 && !reused_objects_seeds.is_empty() {
            let roots: Vec<PathBuf> = options.outputs.iter().map(|(_, p)| p.clone()).collect();
            let found = debug_info::find_object_with(&roots, &reused_objects_seeds)
                .map_err(RunError::OutputScan)?;
            if let Some(file) = found {
                return Err(RunError::DebugInfoAcrossSeeds { file });
            }
        }
        Ok(outcome)
    })
}

/// The earlier checkpoints a build may continue: known, or being opened and checked on a
/// thread of their own while the setup step runs.
pub enum Bases<'scope> {
    Ready(Vec<BaseCheckpoint>),
    Loading(std::thread::ScopedJoinHandle<'scope, LoadedBases>),
}

/// What the thread of [`Bases::loading`] found: the bases that passed every check, the log
/// lines about the others, and its wall and CPU time.
pub struct LoadedBases {
    bases: Vec<BaseCheckpoint>,
    lines: String,
    wall: Duration,
    cpu: Duration,
}

impl<'scope> Bases<'scope> {
    /// Runs `load` on a thread of `scope`: it returns the bases and what to log about them.
    pub fn loading(
        scope: &'scope std::thread::Scope<'scope, '_>,
        load: impl FnOnce() -> (Vec<BaseCheckpoint>, String) + Send + 'scope,
    ) -> Self {
        Bases::Loading(scope.spawn(move || {
            let (started, cpu) = (Instant::now(), recorder::thread_cpu_time());
            let (bases, lines) = load();
            LoadedBases {
                bases,
                lines,
                wall: started.elapsed(),
                cpu: recorder::thread_cpu_time().saturating_sub(cpu),
            }
        }))
    }

    /// Whether there may be a base (so the build directory's first content must be kept,
    /// to fall back to).
    fn may_hold_any(&self) -> bool {
        match self {
            Bases::Ready(bases) => !bases.is_empty(),
            Bases::Loading(_) => true,
        }
    }

    /// The bases, once loaded: the log lines about them printed, the wait counted as the
    /// base check's time and the thread's CPU time as its CPU.
    fn resolve(self, rec: Option<&mut Recorder>) -> Vec<BaseCheckpoint> {
        let thread = match self {
            Bases::Ready(bases) => return bases,
            Bases::Loading(thread) => thread,
        };
        let waited = Instant::now();
        let loaded = thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let waited = waited.elapsed();
        eprint!("{}", loaded.lines);
        if let Some(rec) = rec {
            rec.base_check_time += waited;
            rec.base_check_cpu += loaded.cpu;
            rec.restore_notes.insert(
                0,
                format!(
                    "opening and checking the base, beside the setup step: {:.3}s, CPU {:.3}s, \
                     waited for {:.3}s",
                    loaded.wall.as_secs_f64(),
                    loaded.cpu.as_secs_f64(),
                    waited.as_secs_f64()
                ),
            );
        }
        loaded.bases
    }
}

/// Where the phases begin after setup: the first phase, or the one after the phases an
/// earlier checkpoint gives.
struct Start<'b> {
    state: ShellState,
    /// Index of the first phase to run.
    index: usize,
    last_status: i32,
    /// The base and how its paths move, for an incremental restore after patchPhase.
    incremental: Option<(&'b BaseCheckpoint, PathMoves)>,
    /// Set once objects an earlier build compiled may reach the outputs (buildPhase restored
    /// or resumed over): the seed flags of this build's outputs that differ from that build's.
    reused_objects_seeds: Vec<Vec<u8>>,
    /// Phases before buildPhase rerun over the earlier tree (restored through patchPhase).
    working_copy: Option<WorkingCopy>,
    /// Set on a resume over the earlier tree: what buildPhase must end with.
    environment: Option<EnvironmentCheck>,
    /// The base the build continues, if any.
    chosen: Option<&'b BaseCheckpoint>,
}

/// The check of the chosen base's blobs that no restore read
/// ([`BaseCheckpoint::verify_unread_contents`]), on one thread beside the phases: it decodes
/// and hashes what the build does not need (on the large synthetic project, the base's
/// stripped program and archive), so it need not hold up the phase after the restores.
struct UnreadCheck<'scope, 'b> {
    base: &'b BaseCheckpoint,
    thread: std::thread::ScopedJoinHandle<'scope, UnreadCheckRun>,
}

/// What the check's thread found, with its wall and CPU time.
struct UnreadCheckRun {
    result: Result<(), CheckpointError>,
    wall: Duration,
    cpu: Duration,
}

impl<'scope, 'b: 'scope> UnreadCheck<'scope, 'b> {
    /// Starts the check of `base`, if any (a base is chosen only when a checkpoint is
    /// being written).
    fn start(
        scope: &'scope std::thread::Scope<'scope, '_>,
        base: Option<&'b BaseCheckpoint>,
    ) -> Option<Self> {
        let base = base?;
        let thread = scope.spawn(move || {
            let (started, cpu) = (std::time::Instant::now(), recorder::thread_cpu_time());
            // A panic stays on this thread: it is the check's result, whichever way the
            // build ends (a scope whose thread panicked unjoined would panic itself).
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                base.verify_unread_contents(1)
            }))
            .unwrap_or(Err(CheckpointError::WorkerPanicked));
            UnreadCheckRun {
                result,
                wall: started.elapsed(),
                cpu: recorder::thread_cpu_time().saturating_sub(cpu),
            }
        });
        Some(UnreadCheck { base, thread })
    }

    /// Waits for the check; the wait counts as the base check's time, its CPU time as the
    /// base check's CPU. A bad blob makes the base unusable, and the build falls back to a
    /// clean one ([`run_build`]), whether or not its content entered the build yet.
    fn finish(
        check: Option<Self>,
        rec: Option<&mut Recorder>,
        base_used: &mut Option<PathBuf>,
    ) -> Result<(), RunError> {
        let Some(UnreadCheck { base, thread }) = check else {
            return Ok(());
        };
        let waited = std::time::Instant::now();
        let run = thread.join().unwrap_or(UnreadCheckRun {
            result: Err(CheckpointError::WorkerPanicked),
            wall: Duration::ZERO,
            cpu: Duration::ZERO,
        });
        let waited = waited.elapsed();
        if let Err(e) = run.result {
            *base_used = Some(base.dir.clone());
            return Err(RunError::BaseContents(e));
        }
        if let Some(rec) = rec {
            rec.base_check_time += waited;
            rec.base_check_cpu += run.cpu;
            rec.restore_notes.push(format!(
                "check of the base's blobs no restore read, beside the phases: {:.3}s, CPU \
                 {:.3}s, waited for {:.3}s",
                run.wall.as_secs_f64(),
                run.cpu.as_secs_f64(),
                waited.as_secs_f64()
            ));
        }
        Ok(())
    }
}

/// After setup, with a checkpoint being written: chooses among the candidate bases (pure,
/// [`plan::choose_base`]), restores the chosen one's layers as far as they are reused, or
/// records setup when none is; the decisions and notes go to `outcome`.
#[allow(clippy::too_many_arguments)]
fn start_from_bases<'b>(
    rec: &mut Recorder,
    env: &BuildEnvironment,
    options: &BuildOptions,
    bases: &'b [BaseCheckpoint],
    (setup_state, setup_status): (&ShellState, i32),
    phases: &[String],
    outcome: &mut BuildOutcome,
    base_used: &mut Option<PathBuf>,
) -> Result<Start<'b>, RunError> {
    let mut state = setup_state.clone();
    let mut last_status = setup_status;
    let mut start = 0;
    let mut incremental = None;
    let mut reused_objects_seeds = Vec::new();
    let mut working_copy = None;
    let mut environment = None;
    let mut chosen = None;
    rec.phases = phases.to_vec();
    let moves: Vec<Result<PathMoves, String>> = bases
        .iter()
        .map(|base| {
            let moves = path_rewrites(base, &options.outputs, &env.build_top)?;
            safe_after_rewrites(base, &moves.rewrites)?;
            Ok(moves)
        })
        .collect();
    let candidates: Vec<plan::Candidate<'_>> = bases
        .iter()
        .zip(&moves)
        .map(|(base, moves)| plan::Candidate {
            layers: &base.layers,
            outputs: base.masked_outputs.clone(),
            rewrites: moves
                .as_ref()
                .map(|m| m.rewrites.clone())
                .map_err(Clone::clone),
            unmovable: moves
                .as_ref()
                .ok()
                .and_then(|m| stale::describe_moved_paths(&m.stale)),
        })
        .collect();
    let (choice, skipped) = plan::choose_base(
        &candidates,
        setup_state,
        rec.output_paths(),
        phases,
        rec.strict(),
    );
    if let Some(reason) = skipped {
        let base = candidates
            .iter()
            .rposition(|c| c.rewrites.is_err())
            .map(|i| &bases[i]);
        if let Some(base) = base {
            outcome.reuse_note = Some(format!(
                "checkpoint {} not reused: {reason}",
                base.dir.display()
            ));
        }
    }
    match choice {
        Some(choice) => {
            let base = &bases[choice.index];
            if let Some(note) = &base.trust_note {
                eprintln!("checkpoint-builder: {note}");
            }
            if bases.len() > 1 {
                outcome.reuse_note = Some(format!("base chosen: {}", base.dir.display()));
            }
            let moves = moves[choice.index].clone().unwrap_or_default();
            incremental = Some((base, moves.clone()));
            chosen = Some(base);
            if choice.plan.depth > 0 {
                *base_used = Some(base.dir.clone());
                start = choice.plan.depth;
                // A layer after patchPhase that holds a piece of an earlier output path cannot
                // be restored whole; through patchPhase it can, and the incremental restore
                // below then leaves out what holds one, for the build to remake it.
                let patch = phases[..start]
                    .iter()
                    .position(|p| p == "patchPhase")
                    .filter(|&p| p + 1 < start);
                (state, outcome.decisions) = match (
                    resume_from(rec, env, options, base, choice.clone(), phases, setup_state),
                    patch,
                ) {
                    (
                        Err(RunError::Restore {
                            source: source @ CheckpointError::PathPieceHeld { .. },
                            ..
                        }),
                        Some(p),
                    ) => {
                        eprint!("{}", nix_log::piece_held_line(&source.to_string()));
                        rec.restart().map_err(|source| RunError::Restore {
                            step: "restart before restoring through patchPhase".into(),
                            source,
                        })?;
                        start = p + 1;
                        let choice = plan::Choice {
                            plan: choice.plan.cut_at(
                                start,
                                "a later layer holds a piece of an earlier output path",
                            ),
                            ..choice
                        };
                        resume_from(rec, env, options, base, choice, phases, setup_state)?
                    }
                    (restored, _) => restored?,
                };
                let restored = &phases[..start];
                if restored.iter().any(|p| p == "buildPhase")
                    || !phases.iter().any(|p| p == "buildPhase")
                {
                    reused_objects_seeds =
                        debug_info::changed_seeds(&base.outputs, &options.outputs);
                }
                last_status = 0;
                // Restored exactly through patchPhase (the source is the same, a later phase
                // differs): the phases before buildPhase may rerun over the earlier tree.
                if phases[start - 1] == "patchPhase" {
                    incremental = None;
                    let resumed = resume_after_patch(
                        rec,
                        env,
                        options,
                        base,
                        &moves,
                        phases,
                        start - 1,
                        &state,
                        outcome,
                    )?;
                    if let Some((resumed, adopted)) = resumed {
                        store_record(rec, adopted)?;
                        reused_objects_seeds =
                            debug_info::changed_seeds(&base.outputs, &options.outputs);
                        state = resumed.state;
                        start = resumed.next_phase;
                        working_copy = resumed.working_copy;
                        environment = Some(resumed.environment);
                    }
                }
            } else {
                record(rec, "setup", None, setup_state, setup_status, outcome)?;
                outcome.decisions = choice.plan.decisions;
            }
            // What the phases make anew may be what the base holds, or differ from it in a
            // few bytes (the output path a stripped program names).
            rec.store_against(base);
        }
        None => {
            record(rec, "setup", None, setup_state, setup_status, outcome)?;
            outcome.decisions = plan::no_base_decisions(phases, !bases.is_empty());
        }
    }
    Ok(Start {
        state,
        index: start,
        last_status,
        incremental,
        reused_objects_seeds,
        working_copy,
        environment,
        chosen,
    })
}

/// Restores layers `0..=depth` of `base` (the plan in `choice`) into this build and returns
/// the state the next phase starts from, with the plan's decisions; the restored phases are
/// announced as phases.
fn resume_from(
    rec: &mut Recorder,
    env: &BuildEnvironment,
    options: &BuildOptions,
    base: &BaseCheckpoint,
    choice: plan::Choice,
    phases: &[String],
    setup_state: &ShellState,
) -> Result<(ShellState, Vec<PhaseDecision>), RunError> {
    let plan = choice.plan;
    announce_restore(base, &phases[..plan.depth]);
    rec.resume(
        base,
        plan.depth as u32,
        &choice.rewrites,
        &env.build_top,
        &options.outputs,
    )
    .map_err(|source| RunError::Restore {
        step: format!("restore of {}", phases[plan.depth - 1]),
        source,
    })?;
    let state = plan::with_variables_from(
        &plan::rewrite_state(&base.layers[plan.depth].state, &choice.rewrites),
        &plan.changed_variables,
        setup_state,
    );
    announce_restored_phases(
        phases[..plan.depth]
            .iter()
            .zip(base.layers.iter().map(|l| &l.state)),
        &plan.decisions,
    );
    Ok((state, plan.decisions))
}

/// After `patchPhase` (at `patch_index`): the incremental restore from `base` when its rules
/// allow it. On a resume the adopted phases are recorded as taken-over layers and announced,
/// their decisions replace the planned ones, and the state and index of the phase to run next
/// are returned; otherwise the reason goes to the log and the build goes on.
#[allow(clippy::too_many_arguments)]
fn resume_after_patch(
    rec: &mut Recorder,
    env: &BuildEnvironment,
    options: &BuildOptions,
    base: &BaseCheckpoint,
    moves: &PathMoves,
    phases: &[String],
    patch_index: usize,
    after_patch: &ShellState,
    outcome: &mut BuildOutcome,
) -> Result<Option<(Resumed, Option<ReadRecord>)>, RunError> {
    eprint!("{}", nix_log::incremental_line(&base.dir.to_string_lossy()));
    let (started, cpu) = (std::time::Instant::now(), recorder::cpu_time());
    let (restore_before, restore_cpu_before) = (rec.restore_time, rec.restore_cpu);
    let resumption = try_resume(
        base,
        moves,
        phases,
        patch_index,
        after_patch,
        rec,
        &env.build_top,
        &options.outputs,
    )
    .map_err(RunError::Incremental)?;
    rec.end_staging().map_err(|source| RunError::Restore {
        step: "incremental restore".into(),
        source,
    })?;
    rec.analysis_time += started
        .elapsed()
        .saturating_sub(rec.restore_time.saturating_sub(restore_before));
    rec.analysis_cpu += recorder::cpu_time()
        .saturating_sub(cpu)
        .saturating_sub(rec.restore_cpu.saturating_sub(restore_cpu_before));
    let mut resumed = match resumption {
        Resumption::Resumed(resumed) => resumed,
        Resumption::NotResumed(reason) => {
            outcome.reuse_note = Some(format!("no incremental restore after patchPhase: {reason}"));
            return Ok(None);
        }
    };
    // The last phase taken over is read now and stored beside the next phase.
    let mut last_read = None;
    for (p, before, after) in &resumed.adopted {
        store_record(rec, last_read.take())?;
        rec.next_layer_taken_over = true;
        last_read = Some(read_record(
            rec,
            p,
            (Some(before), after, 0),
            outcome,
            TreeMoment::now(),
            true,
        )?);
    }
    for d in std::mem::take(&mut resumed.decisions) {
        if let Some(slot) = outcome.decisions.iter_mut().find(|x| x.phase == d.phase) {
            *slot = d;
        }
    }
    announce_restored_phases(
        resumed.adopted.iter().map(|(p, before, _)| (p, before)),
        &outcome.decisions,
    );
    Ok(Some((*resumed, last_read)))
}

/// After the phases rerun over the earlier tree (`state` is the one after the last of them):
/// settles the tree ([`working_copy::settle`]) and adds what it did to buildPhase's line. A
/// refusal falls back to a clean build (the rerun phases already ran over the earlier tree).
/// Returns the build products it left out for make to remake.
fn settle_rerun(
    rec: &mut Recorder,
    copy: &WorkingCopy,
    state: &ShellState,
    env: &BuildEnvironment,
    options: &BuildOptions,
    outcome: &mut BuildOutcome,
) -> Result<Vec<RelPath>, RunError> {
    let settled = working_copy::settle(copy, rec, state, &env.build_top, &options.outputs)
        .map_err(|e| RunError::Incremental(ResumeError::Settle(e)))?;
    if let Some(d) = outcome
        .decisions
        .iter_mut()
        .find(|d| d.phase == "buildPhase")
    {
        d.reason.push_str(&settled.note());
    }
    Ok(settled.left_out)
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
    rec: &mut Recorder,
    step: &str,
    before: Option<&ShellState>,
    after: &ShellState,
    status: i32,
    outcome: &BuildOutcome,
) -> Result<(), RunError> {
    let read = read_record(
        rec,
        step,
        (before, after, status),
        outcome,
        TreeMoment::now(),
        false,
    )?;
    store_record(rec, Some(read))
}

/// [`Recorder::read_layer`] for the layer after a phase, whose new contents (up to
/// [`HELD_WHILE_NEXT_STEP_RUNS`]) may be stored while the next phase runs.
fn read_record(
    rec: &mut Recorder,
    step: &str,
    (before, after, status): (Option<&ShellState>, &ShellState, i32),
    outcome: &BuildOutcome,
    ended: TreeMoment,
    hold: bool,
) -> Result<ReadRecord, RunError> {
    let holding = if hold {
        Holding::up_to(HELD_WHILE_NEXT_STEP_RUNS)
    } else {
        Holding::none()
    };
    rec.read_layer(
        step,
        (before, after, status, step_seconds(outcome)),
        ended,
        &holding,
    )
    .map_err(|source| RunError::Checkpoint {
        step: step.to_owned(),
        source,
    })
}

/// The work time of the last step, for its layer.
fn step_seconds(outcome: &BuildOutcome) -> Option<f64> {
    outcome
        .steps
        .last()
        .and_then(|s| s.work)
        .map(|w| w.as_secs_f64())
}

/// Stores a layer [`read_record`] read, now (the build waits for all of it).
fn store_record(rec: &mut Recorder, read: Option<ReadRecord>) -> Result<(), RunError> {
    let Some(read) = read else {
        return Ok(());
    };
    let started = Instant::now();
    let step = read.step().to_owned();
    let stored = rec
        .store_layer(read, None)
        .map_err(|source| RunError::Checkpoint { step, source })?;
    stored_layer(rec, stored, started.elapsed());
    Ok(())
}

/// Reports a stored layer, with the slow-snapshot line when the build waited long for it.
fn stored_layer(rec: &mut Recorder, stored: StoredRecord, waited: Duration) {
    let blocked = stored.read_time() + waited;
    if blocked > nix_log::SLOW_SNAPSHOT {
        eprint!(
            "{}",
            nix_log::slow_snapshot_line(
                stored.step(),
                blocked,
                stored.summary.files_hashed,
                stored.summary.bytes_hashed
            )
        );
    }
    rec.note_stored(stored, waited);
}

/// Most bytes of a phase's new contents held in memory to be stored while the next phase
/// runs; a snapshot stores the rest before the next phase starts.
const HELD_WHILE_NEXT_STEP_RUNS: u64 = 512 << 20;

/// The layer after a phase, stored on a thread of its own while the next phase runs: its
/// compression and deltas, and the copy of its blobs into the pack, need not hold up that
/// phase. The thread holds the recorder until [`StoringLayer::settle`] gives it back, and
/// the layers of phases that started no process meanwhile wait for it in `queued`. It stores
/// on half the cores until the build waits for it (`settle` opens `wait_started`), then on
/// all of them.
struct StoringLayer<'scope, 'r> {
    step: String,
    wait_started: Arc<Gate>,
    thread: std::thread::ScopedJoinHandle<
        'scope,
        (&'r mut Recorder, Result<StoredRecord, CheckpointError>),
    >,
    /// Whether the trees were unchanged at a moment, as the recorder would tell.
    unchanged_at: Box<dyn Fn(TreeMoment) -> bool>,
    queued: Vec<QueuedRecord>,
}

/// The layer of a phase that started no process while [`StoringLayer`] held the recorder.
struct QueuedRecord {
    step: String,
    before: ShellState,
    after: ShellState,
    status: i32,
    seconds: Option<f64>,
    taken_over: bool,
    ended: TreeMoment,
}

impl<'scope, 'r: 'scope> StoringLayer<'scope, 'r> {
    fn start(
        scope: &'scope std::thread::Scope<'scope, '_>,
        rec: &'r mut Recorder,
        read: ReadRecord,
        step: &str,
    ) -> Self {
        let unchanged_at = Box::new(rec.unchanged_since_last_walk());
        let wait_started = Arc::new(Gate::new());
        let gate = Arc::clone(&wait_started);
        let thread = scope.spawn(move || {
            // A panic stays on this thread and becomes the store's error.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rec.store_layer(read, Some(&gate))
            }))
            .unwrap_or(Err(CheckpointError::WorkerPanicked));
            (rec, result)
        });
        StoringLayer {
            step: step.to_owned(),
            wait_started,
            thread,
            unchanged_at,
            queued: Vec::new(),
        }
    }

    /// Whether the layer of a phase that ended at `ended` may wait in the queue: it is the
    /// last one's trees, and needs no walk now.
    fn may_queue(&self, ended: TreeMoment) -> bool {
        (self.unchanged_at)(ended)
    }

    fn queue(&mut self, record: QueuedRecord) {
        self.queued.push(record);
    }

    /// Waits for the layer being stored, if any, and gives the recorder back; the wait
    /// counts as snapshot time.
    fn settle(
        storing: &mut Option<Self>,
        recorder: &mut Option<&'r mut Recorder>,
    ) -> Result<(), RunError> {
        let Some(StoringLayer {
            step,
            wait_started,
            thread,
            queued,
            ..
        }) = storing.take()
        else {
            return Ok(());
        };
        let started = Instant::now();
        wait_started.open();
        let (rec, result) = thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let waited = started.elapsed();
        let stored = result.map_err(|source| RunError::Checkpoint { step, source });
        let rec = recorder.insert(rec);
        stored_layer(rec, stored?, waited);
        for q in queued {
            debug_assert!(rec.unchanged_at(q.ended), "a queued layer would walk");
            rec.next_layer_taken_over |= q.taken_over;
            let read = rec
                .read_layer(
                    &q.step,
                    (Some(&q.before), &q.after, q.status, q.seconds),
                    q.ended,
                    &Holding::none(),
                )
                .map_err(|source| RunError::Checkpoint {
                    step: q.step.clone(),
                    source,
                })?;
            store_record(rec, Some(read))?;
        }
        Ok(())
    }
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
fn safe_after_rewrites(base: &BaseCheckpoint, rewrites: &[RewritePair]) -> Result<(), String> {
    let mut validator = crate::shell::validate::StateValidator::default();
    for layer in &base.layers {
        validator
            .validate(&plan::rewrite_state(&layer.state, rewrites))
            .map_err(|e| {
                format!(
                    "layer `{}`: its shell state moved to this build's paths is unsafe to restore: {e}",
                    layer.name
                )
            })?;
    }
    Ok(())
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

/// Runs one step in a new bash process and waits for it to end.
fn run_step(
    env: &BuildEnvironment,
    name: &str,
    args: &[OsString],
    full_env: Option<&Vec<(OsString, OsString)>>,
    restored: Option<(&[(OsString, OsString)], &ShellState)>,
    groups: &mut Vec<i32>,
) -> Result<StepRun, RunError> {
    let started = Instant::now();
    let mut child = spawn_step(env, name, args, full_env, restored, groups)?;
    let status = wait_for_end(env, name, &mut child)?;
    Ok(StepRun {
        status,
        wall: started.elapsed(),
    })
}

/// Starts one step's bash process, the leader of a process group of its own.
fn spawn_step(
    env: &BuildEnvironment,
    name: &str,
    args: &[OsString],
    full_env: Option<&Vec<(OsString, OsString)>>,
    restored: Option<(&[(OsString, OsString)], &ShellState)>,
    groups: &mut Vec<i32>,
) -> Result<Child, RunError> {
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
    signals::keep_inherited(&mut cmd);
    // SAFETY: the closure only makes async-signal-safe syscalls (setpgid, umask, setrlimit).
    // Stays `unsafe`: `pre_exec` itself is an unsafe fn.
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
    signals::step_starting();
    let child = cmd
        .spawn()
        .map_err(|source| spawn_error(env, name, source))?;
    let pid = child.id() as i32;
    groups.push(pid);
    signals::set_current_group(pid);
    Ok(child)
}

fn spawn_error(env: &BuildEnvironment, step: &str, source: std::io::Error) -> RunError {
    RunError::Spawn {
        bash: env.bash.clone(),
        step: step.to_owned(),
        source,
    }
}

/// Waits for a step's process to end; its exit status (128 + the signal that ended it).
fn wait_for_end(env: &BuildEnvironment, name: &str, child: &mut Child) -> Result<i32, RunError> {
    let status = loop {
        match child.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(spawn_error(env, name, source)),
        }
    };
    Ok(step_ended(status))
}

/// What follows the end of a step's process: no group to forward signals to, the orphans it
/// left reaped. Its exit status (128 + the signal that ended it).
fn step_ended(status: std::process::ExitStatus) -> i32 {
    signals::set_current_group(0);
    signals::reap_orphans();
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Lets the waiting phase process `w` run the code of the next memory file (the next phase,
/// or the build's end): its process, and when it went on.
fn go_on(
    env: &BuildEnvironment,
    name: &str,
    w: Waiting,
    pipes: &mut PhasePipes,
) -> Result<(Child, Instant), RunError> {
    let child = w.child;
    signals::set_waiting(0);
    signals::step_starting();
    signals::set_current_group(child.id() as i32);
    let started = Instant::now();
    pipes.go().map_err(|e| spawn_error(env, name, e))?;
    Ok((child, started))
}

/// Ends the waiting phase process `w` without ending the build: the next step starts from
/// another state, in a process of its own.
fn leave(
    env: &BuildEnvironment,
    w: Waiting,
    pipes: &mut PhasePipes,
    next_file: &mut MemFile,
) -> Result<(), RunError> {
    let mut child = w.child;
    signals::set_waiting(0);
    next_file
        .set(driver::leave_code().as_bytes())
        .map_err(RunError::MemFile)?;
    pipes.go().map_err(|e| spawn_error(env, "leave", e))?;
    // It may have ended by itself already (and been reaped with the orphans).
    let _ = child.wait();
    signals::set_current_group(0);
    signals::reap_orphans();
    Ok(())
}

type StepResult = Option<(ShellState, Option<Vec<String>>, i32)>;

/// Runs `phase` from `state` and reads what it left (see [`finish_step`]): in the last
/// phase's process, waiting in `waiting`, when `state` is the state it dumped
/// ([`waiting::goes_on`]), else in a process of its own (the waiting one leaves first).
/// A process that dumped its state waits in `waiting` for the next step.
#[allow(clippy::too_many_arguments)]
fn run_phase_step(
    env: &BuildEnvironment,
    channel: &Channel,
    (dump, restore, script_file, step_file, next_file): (
        &mut MemFile,
        &mut MemFile,
        &mut MemFile,
        &mut MemFile,
        &mut MemFile,
    ),
    (arg0, passthrough): (&OsString, &[(OsString, OsString)]),
    (pipes, waiting): (&mut PhasePipes, &mut Option<Waiting>),
    state: &ShellState,
    phase: &str,
    groups: &mut Vec<i32>,
    outcome: &mut BuildOutcome,
) -> Result<StepResult, RunError> {
    if !phase_is_defined(state, phase) {
        eprintln!(
            "checkpoint-builder: phase `{phase}` is neither a non-empty variable nor a function; \
             bash will fail with status 127, as the stock builder does"
        );
    }
    dump.clear().map_err(RunError::MemFile)?;
    let (mut child, started) = match waiting.take() {
        Some(w) if waiting::goes_on(&w.state, state) => {
            let code = driver::next_phase_code(channel, state, phase);
            trace_file(&format!("{phase}.next.sh"), code.as_bytes());
            next_file.set(code.as_bytes()).map_err(RunError::MemFile)?;
            go_on(env, phase, w, pipes)?
        }
        other => {
            if let Some(w) = other {
                leave(env, w, pipes, next_file)?;
            }
            let restore_text = restore_script(state);
            restore
                .set(restore_text.as_bytes())
                .map_err(RunError::MemFile)?;
            trace_file(&format!("{phase}.restore.sh"), restore_text.as_bytes());
            let script = driver::phase_script(channel, state, phase);
            let args = script_args(script_file, step_file, false, arg0, &script)?;
            pipes.drain();
            let started = Instant::now();
            let child = spawn_step(env, phase, &args, None, Some((passthrough, state)), groups)?;
            (child, started)
        }
    };
    let end = pipes
        .wait(&mut child)
        .map_err(|e| spawn_error(env, phase, e))?;
    let status = match end {
        StepEnd::Paused => {
            signals::set_current_group(0);
            0
        }
        StepEnd::Exited(status) => step_ended(status),
    };
    let run = StepRun {
        status,
        wall: started.elapsed(),
    };
    let result = finish_step(dump, phase, run, outcome)?;
    if let (StepEnd::Paused, Some((dumped, _, _))) = (&end, &result) {
        signals::set_waiting(child.id() as i32);
        *waiting = Some(Waiting {
            child,
            state: dumped.clone(),
        });
    } else if let StepEnd::Paused = end {
        // Paused without a whole dump: cannot go on from it.
        let _ = child.kill();
        wait_for_end(env, phase, &mut child)?;
    }
    Ok(result)
}

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
