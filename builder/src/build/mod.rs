//! One build as Nix runs it: what the environment gave ([`environment`], [`invocation`]), the
//! checkpoint set-up ([`plan_build`]: pure), the steps run as bash processes ([`runner`], with
//! [`signals`], [`capture`] and [`memfile`]), the layers recorded after each ([`recorder`])
//! and what log readers are told ([`nix_log`]). [`run`] drives them in this order.

pub mod capture;
pub mod environment;
pub mod invocation;
pub mod memfile;
pub mod nix_log;
pub mod recorder;
pub mod runner;
pub mod signals;
pub mod waiting;

use crate::checkpoint::CheckpointError;
use crate::dev_cache::{copy_checkpoint, DevCache};
use crate::exit_codes;
use crate::meta::BuildMeta;
use crate::reuse::base::{load_base, BaseCheckpoint};
use crate::reuse::trust::{BaseTrust, TRUST_ATTRIBUTE};
use environment::{BuildEnvironment, EnvironmentError};
use invocation::{classify, stock_positional, Invocation};
use recorder::{cpu_time, declared_outputs, Recorder, CHECKPOINT_OUTPUT};
use runner::{format_report, run_build, Bases, BuildOptions, BuildOutcome, RunError, StepReport};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a build could not start, run or finish its checkpoint. A build that ran and failed is
/// not an error: it ends with the status of the step that ended it.
#[derive(Debug, Error)]
pub enum BuildError {
    #[error("cannot start the build")]
    Environment(#[source] EnvironmentError),
    #[error("cannot exec {}", bash.display())]
    ExecBash {
        bash: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot locate the builder binary")]
    CurrentExe(#[source] std::io::Error),
    #[error("cannot create the checkpoint")]
    StartCheckpoint(#[source] CheckpointError),
    #[error("the build could not be run")]
    Run(#[source] RunError),
    #[error("cannot finish the checkpoint")]
    FinishCheckpoint(#[source] CheckpointError),
    #[error("cannot copy the cache entry to the checkpoint output")]
    CopyCacheEntry(#[source] std::io::Error),
}

impl BuildError {
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::Environment(_) => exit_codes::BUILDER_INPUT,
            _ => exit_codes::BUILDER_INTERNAL,
        }
    }

    pub fn hint(&self) -> Option<&'static str> {
        match self {
            BuildError::Environment(EnvironmentError::NoStdenv(_)) => Some(
                "the builder runs as a derivation's builder under Nix; \
                 `checkpoint-builder --help` lists the commands that inspect a checkpoint",
            ),
            _ => None,
        }
    }
}

/// Where a build's layers go and what its checkpoint records: decided from the derivation's
/// attributes alone, before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    /// The derivation's outputs other than `checkpoint` (name, path).
    pub outputs: Vec<(String, PathBuf)>,
    /// The `checkpoint` output, when the derivation has one.
    pub checkpoint_dir: Option<PathBuf>,
    pub name: String,
    pub system: Option<String>,
    /// `checkpointCache`: the development cache directory (design §7).
    pub cache_dir: Option<String>,
    /// `checkpointBase`: the earlier checkpoint to continue.
    pub base_dir: Option<String>,
    /// `checkpointStrict`: every variable is keyed.
    pub strict: bool,
    /// `checkpointBaseTrust` (docs/trust.md), or why its value was not understood.
    pub trust: Result<BaseTrust, String>,
}

/// Pure: the plan for the build `env` describes.
pub fn plan_build(env: &BuildEnvironment) -> BuildPlan {
    let declared = declared_outputs(env);
    let checkpoint_dir = declared
        .iter()
        .find(|(name, _)| name == CHECKPOINT_OUTPUT)
        .map(|(_, path)| path.clone());
    let outputs = declared
        .into_iter()
        .filter(|(name, _)| name != CHECKPOINT_OUTPUT)
        .collect();
    let non_empty = |name: &str| env.attribute(name).filter(|v| !v.is_empty());
    BuildPlan {
        outputs,
        checkpoint_dir,
        name: env.attribute("name").unwrap_or_default(),
        system: env.attribute("system"),
        cache_dir: non_empty("checkpointCache"),
        base_dir: non_empty("checkpointBase"),
        strict: non_empty("checkpointStrict").is_some(),
        trust: BaseTrust::from_attribute(env.attribute(TRUST_ATTRIBUTE).as_deref()),
    }
}

impl BuildPlan {
    /// The checkpoint-wide metadata the layers are written with.
    pub fn meta(&self, build_top: &Path) -> BuildMeta {
        BuildMeta {
            builder: format!("checkpoint-builder {}", env!("CARGO_PKG_VERSION")),
            name: self.name.clone(),
            system: self.system.clone(),
            outputs: self.outputs.iter().map(|(n, _)| n.clone()).collect(),
            output_paths: self
                .outputs
                .iter()
                .map(|(n, p)| (n.clone(), p.to_string_lossy().into_owned()))
                .collect(),
            build_top: build_top.to_string_lossy().into_owned(),
            // Where this checkpoint will be: a later build uses it as a base only at this
            // path (docs/trust.md). A cache entry of a build without a checkpoint output has
            // none.
            checkpoint_path: self
                .checkpoint_dir
                .as_ref()
                .map(|d| d.to_string_lossy().into_owned()),
            chain: None,
            restored_layers: None,
        }
    }
}

/// Runs the build Nix asked for (`args`: the derivation's args). `Ok` is the status to exit
/// with: 0, or the status of the step that ended a failed build.
pub fn run(args: &[String]) -> Result<i32, BuildError> {
    let env = BuildEnvironment::from_process().map_err(BuildError::Environment)?;
    let stock_args = match classify(args) {
        Invocation::Build { stock_args } => stock_args,
        Invocation::PassThrough { args } => return Err(pass_through(&env, &args)),
    };
    let (arg0, arg1) = stock_positional(&stock_args);
    let helper = std::env::current_exe().map_err(BuildError::CurrentExe)?;
    let plan = plan_build(&env);
    let cache = plan
        .cache_dir
        .as_ref()
        .and_then(|dir| match DevCache::open(Path::new(dir)) {
            Ok(cache) => Some(cache),
            Err(reason) => {
                eprintln!("checkpoint-builder: development cache disabled: {reason}");
                None
            }
        });
    // Layers go to the development cache entry when there is one (written as phases end, so a
    // failed build leaves them), else straight into the checkpoint output.
    let layers_dir = match (&cache, &plan.checkpoint_dir) {
        (Some(cache), _) => Some(cache.new_entry(&plan.name)),
        (None, Some(dir)) => Some(dir.clone()),
        (None, None) => None,
    };
    let mut recorder = match &layers_dir {
        None => None,
        Some(dir) => Some(
            Recorder::start(
                dir,
                &env.build_top,
                &plan.outputs,
                plan.meta(&env.build_top),
                plan.strict,
            )
            .map_err(BuildError::StartCheckpoint)?,
        ),
    };
    let options = BuildOptions {
        arg0,
        arg1,
        helper,
        outputs: plan.outputs.clone(),
        hidden_output: plan
            .checkpoint_dir
            .as_ref()
            .map(|_| CHECKPOINT_OUTPUT.to_owned()),
    };
    // Opening and checking the earlier checkpoints is the builder's own time too (the base's
    // blobs no restore reads are rehashed beside the phases). A `checkpointBase` needs
    // nothing of the setup step and is checked on a thread of its own while that step runs;
    // the development cache's entries, which the check may delete, before it.
    let outcome = std::thread::scope(|scope| {
        let bases = match (&plan.base_dir, recorder.is_some()) {
            (Some(dir), true) => Bases::loading(scope, || checkpoint_base(&plan, dir)),
            (base_dir, _) => {
                let (started, cpu) = (std::time::Instant::now(), cpu_time());
                let bases = match base_dir {
                    Some(_) => {
                        eprintln!(
                            "checkpoint-builder: checkpointBase ignored: the derivation has no \
                             `{CHECKPOINT_OUTPUT}` output to continue"
                        );
                        Vec::new()
                    }
                    None => match (&cache, &layers_dir) {
                        (Some(cache), Some(own)) => {
                            cache.candidates(&plan.name, plan.system.as_deref(), own)
                        }
                        _ => Vec::new(),
                    },
                };
                if let Some(rec) = recorder.as_mut() {
                    rec.base_check_time += started.elapsed();
                    rec.base_check_cpu += cpu_time().saturating_sub(cpu);
                }
                Bases::Ready(bases)
            }
        };
        run_build(&env, &options, recorder.as_mut(), bases)
    })
    .map_err(BuildError::Run)?;
    report_outcome(&outcome, recorder.as_ref());
    let Some(rec) = recorder else {
        return Ok(outcome.status);
    };
    if outcome.status != 0 {
        if let (Some(_), Some(cache_dir), Some(entry)) = (&cache, &plan.cache_dir, &layers_dir) {
            eprintln!(
                "checkpoint-builder: the build's layers, and its tree at the failure, are kept in {}\n  enter it: checkpoint-builder shell --cache {cache_dir} {} --at PHASE",
                entry.display(),
                plan.name
            );
        }
        return Ok(outcome.status);
    }
    eprintln!(
        "checkpoint-builder: snapshots took {:.3}s in all, restores of earlier layers {:.3}s",
        rec.snapshot_time.as_secs_f64(),
        rec.restore_time.as_secs_f64()
    );
    report_own_time(&outcome, &rec);
    let started = std::time::Instant::now();
    let finished = rec.finish().map_err(BuildError::FinishCheckpoint)?;
    eprintln!(
        "checkpoint-builder: checkpoint finished in {:.3}s",
        started.elapsed().as_secs_f64()
    );
    if let (Some(_), Some(out)) = (&cache, &plan.checkpoint_dir) {
        copy_checkpoint(&finished, out).map_err(BuildError::CopyCacheEntry)?;
    }
    Ok(outcome.status)
}

/// Not a generic stdenv build: bash runs the derivation's args exactly as stock would. Returns
/// only if bash could not be started.
fn pass_through(env: &BuildEnvironment, args: &[String]) -> BuildError {
    eprintln!(
        "checkpoint-builder: not a generic stdenv build (custom builder script or args); \
         running bash with the derivation's args unchanged"
    );
    let mut cmd = std::process::Command::new(&env.bash);
    cmd.args(args);
    signals::keep_inherited(&mut cmd);
    BuildError::ExecBash {
        bash: env.bash.clone(),
        source: cmd.exec(),
    }
}

/// The `checkpointBase` of a build that records a checkpoint, when it passes every check,
/// with the lines that say why not, for the log.
fn checkpoint_base(plan: &BuildPlan, dir: &str) -> (Vec<BaseCheckpoint>, String) {
    if !Path::new(dir).exists() {
        return (Vec::new(), nix_log::missing_base_line(dir));
    }
    let mut lines = String::new();
    let trust = plan.trust.clone().unwrap_or_else(|reason| {
        lines.push_str(&format!(
            "checkpoint-builder: {reason}; only a checkpoint built at its path is used\n"
        ));
        BaseTrust::Built
    });
    match load_base(Path::new(dir), plan.system.as_deref(), trust) {
        Ok(base) => (vec![base], lines),
        Err(reason) => {
            lines.push_str(&format!(
                "checkpoint-builder: checkpoint {dir} rejected: {reason}; building from scratch\n"
            ));
            (Vec::new(), lines)
        }
    }
}

/// The closing lines of a build: the step table, what reuse decided and why, ninja log
/// repairs, and why the build ended where it did.
fn report_outcome(outcome: &BuildOutcome, recorder: Option<&Recorder>) {
    eprint!("{}", format_report(&outcome.steps));
    if let Some(note) = &outcome.reuse_note {
        eprintln!("checkpoint-builder: {note}");
    }
    for d in &outcome.decisions {
        eprintln!("checkpoint-builder: {:<24} {}", d.phase, d.reason);
    }
    for r in recorder.iter().flat_map(|rec| rec.ninja_log_reports()) {
        eprintln!("checkpoint-builder: {r}");
    }
    if let Some(why) = &outcome.ended_by {
        eprintln!("checkpoint-builder: {why}");
    }
}

/// The builder's own time (checking the base, restore, snapshot, carry) beside the phases',
/// its CPU time, and one line per restore and snapshot (docs/benchmarks.md, "Scale").
fn report_own_time(outcome: &BuildOutcome, rec: &Recorder) {
    let seconds = |f: fn(&StepReport) -> Option<std::time::Duration>| -> f64 {
        outcome
            .steps
            .iter()
            .filter_map(f)
            .map(|d| d.as_secs_f64())
            .sum()
    };
    eprintln!(
        "checkpoint-builder: own time: base check {:.3}s, restore {:.3}s, analysis {:.3}s, snapshot {:.3}s, carry {:.3}s; phases {:.3}s",
        rec.base_check_time.as_secs_f64(),
        rec.restore_time.as_secs_f64(),
        rec.analysis_time.as_secs_f64(),
        rec.snapshot_time.as_secs_f64(),
        seconds(StepReport::carry),
        seconds(|s: &StepReport| s.work)
    );
    eprintln!(
        "checkpoint-builder: own CPU time: base check {:.3}s, restore {:.3}s, analysis {:.3}s, snapshot {:.3}s",
        rec.base_check_cpu.as_secs_f64(),
        rec.restore_cpu.as_secs_f64(),
        rec.analysis_cpu.as_secs_f64(),
        rec.snapshot_cpu.as_secs_f64()
    );
    for note in rec.restore_notes.iter().chain(&rec.snapshot_notes) {
        eprintln!("checkpoint-builder:   {note}");
    }
}
