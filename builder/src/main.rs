//! The `checkpoint-builder` binary: a derivation builder when Nix runs it, a CLI otherwise.
//!
//! It has its own C `main` (`no_main`) so that it sees how SIGPIPE was set when it started:
//! Rust's runtime would set it to "ignore" before `main`, and a build started with SIGPIPE
//! ignored must pass that on to its phases, as stock's bash does
//! ([`checkpoint_builder::build::runner::note_inherited_signals`]).
#![no_main]

use checkpoint_builder::build::environment::BuildEnvironment;
use checkpoint_builder::build::invocation::{classify, stock_positional, Invocation};
use checkpoint_builder::build::recorder::{declared_outputs, Recorder, CHECKPOINT_OUTPUT};
use checkpoint_builder::build::runner::{format_report, run_build, BuildOptions, StepReport};
use checkpoint_builder::dev_cache::{copy_checkpoint, DevCache};
use checkpoint_builder::exit_codes;
use checkpoint_builder::reuse::base::{load_base, BaseCheckpoint};
use checkpoint_builder::reuse::trust::BaseTrust;
use std::os::unix::process::CommandExt;
use std::path::Path;

#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    checkpoint_builder::build::runner::note_inherited_signals();
    // A panic must not unwind out of this C function (that aborts): it is reported by the
    // panic hook and becomes the internal-error exit code, as a Rust `main` would exit 101.
    let code = std::panic::catch_unwind(run).unwrap_or(exit_codes::BUILDER_INTERNAL);
    std::process::exit(code);
}

fn run() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("__capture") => {
            match checkpoint_builder::build::capture::run(args.get(1).map_or("", |s| s)) {
                Ok(()) => exit_codes::SUCCESS,
                Err(e) => {
                    eprintln!("checkpoint-builder __capture: {e}");
                    exit_codes::BUILDER_INTERNAL
                }
            }
        }
        Some("--version") => {
            println!("checkpoint-builder {}", env!("CARGO_PKG_VERSION"));
            exit_codes::SUCCESS
        }
        Some("--help" | "-h" | "help") => {
            print!("{}", HELP);
            exit_codes::SUCCESS
        }
        Some("build") => build(&args[1..]),
        Some("export-oci") => export_oci(&args[1..]),
        Some("inspect" | "verify" | "restore" | "shell" | "diff" | "cache") => command(&args),
        _ => build(&args),
    }
}

const HELP: &str = "\
checkpoint-builder: a Nix builder that runs each stdenv phase in its own bash process.

As a derivation's builder (Nix runs it):
  builder = <path>/bin/checkpoint-builder;
  args = [ ];                      # or the stdenv's own: -e <source-stdenv.sh> <default-builder.sh>
Any other args (a custom builder script) are handed to bash unchanged.

Commands:
  build [ARGS...]                          run the build in the current environment (what Nix does)
  inspect CHECKPOINT [--json]              layers, phases, durations, sizes, keys
  verify CHECKPOINT [--json]               recheck every hash and the manifest's invariants
  restore CHECKPOINT --after PHASE DIR [--keep-setid]
                                           restore each root (build, out, ...) into DIR/<root>;
                                           setuid/setgid bits only with --keep-setid
  diff A B [--json]                        why two checkpoints' layers differ, layer by layer
  shell --cache DIR NAME --at PHASE        the same for a development cache entry (NAME: the
                                           derivation name); PHASE may be the one that failed
  cache ls DIR [--json]                    what a development cache keeps
  cache gc DIR --max-size SIZE             evict least recently used entries (SIZE: 10G, 500M)
  shell CHECKPOINT --after PHASE [--keep DIR]
                                           restore into a temporary directory and open an
                                           interactive bash with the state after PHASE
  export-oci CHECKPOINT DIR [--after PHASE] [--tag NAME] [--compression gzip|zstd]
                                           write an OCI image layout into DIR (absent or
                                           empty): one layer per phase up to PHASE (default:
                                           all), tagged NAME (default: latest)
  --version                                print the version

Exit codes: 0 success; 2 bad invocation or input; 65 checkpoint unusable; 70 builder error;
during a build, the status of the step that ended it.
";

/// Parses `inspect|verify|restore|shell` arguments and runs the command.
fn command(args: &[String]) -> i32 {
    use checkpoint_builder::cli;
    let mut positional = Vec::new();
    let mut json = false;
    let mut after = None;
    let mut keep = None;
    let mut cache_dir: Option<std::path::PathBuf> = None;
    let mut max_size = None;
    let mut keep_setid = false;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--after" => after = it.next().cloned(),
            "--keep" => keep = it.next().map(std::path::PathBuf::from),
            "--at" => after = it.next().cloned(),
            "--cache" => cache_dir = it.next().map(std::path::PathBuf::from),
            "--max-size" => max_size = it.next().cloned(),
            "--keep-setid" if args[0] == "restore" => keep_setid = true,
            other if other.starts_with("--") => {
                eprintln!("checkpoint-builder: unknown option {other}\n\n{HELP}");
                return exit_codes::BUILDER_INPUT;
            }
            other => positional.push(std::path::PathBuf::from(other)),
        }
    }
    let usage = |msg: &str| {
        eprintln!("checkpoint-builder {}: {msg}", args[0]);
        exit_codes::BUILDER_INPUT
    };
    let sub = if args[0] == "cache" {
        positional
            .first()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let result = match (args[0].as_str(), positional.as_slice(), after.as_deref()) {
        ("cache", [_, dir], None) if sub == "ls" => cli::cache_ls(dir, json).map(|_| 0),
        ("cache", [_, dir], None) if sub == "gc" => {
            match max_size.as_deref().and_then(cli::parse_size) {
                Some(bytes) => cli::cache_gc(dir, bytes).map(|_| 0),
                None => return usage("usage: cache gc DIR --max-size SIZE (e.g. 10G)"),
            }
        }
        ("cache", _, _) => {
            return usage("usage: cache ls DIR [--json] | cache gc DIR --max-size SIZE")
        }
        ("shell", [name], Some(phase)) if cache_dir.is_some() => {
            let dir = cache_dir.as_deref().expect("checked");
            cli::cache_entry(dir, &name.to_string_lossy())
                .and_then(|entry| cli::shell(&entry, phase, keep.as_deref()))
        }
        ("inspect", [ck], None) => cli::inspect(ck, json).map(|_| 0),
        ("diff", [a, b], None) => cli::diff(a, b, json).map(|_| 0),
        ("diff", _, _) => return usage("usage: diff CHECKPOINT-A CHECKPOINT-B [--json]"),
        ("verify", [ck], None) => cli::verify(ck, json).map(|_| 0),
        ("restore", [ck, dir], Some(phase)) => {
            let opts = checkpoint_builder::checkpoint::RestoreOptions { keep_setid };
            cli::restore_with(ck, phase, dir, opts).map(|_| 0)
        }
        ("shell", [ck], Some(phase)) => cli::shell(ck, phase, keep.as_deref()),
        ("restore", _, _) => {
            return usage("usage: restore CHECKPOINT --after PHASE DIR [--keep-setid]")
        }
        ("shell", _, _) => return usage("usage: shell CHECKPOINT --after PHASE [--keep DIR]"),
        _ => return usage("expects exactly one CHECKPOINT"),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&format!("{} failed", args[0]), &e);
            if e.is_checkpoint_fault() {
                exit_codes::CHECKPOINT_UNUSABLE
            } else {
                exit_codes::BUILDER_INPUT
            }
        }
    }
}

/// `export-oci`: the checkpoint as an OCI image layout (docs/oci-export.md).
fn export_oci(args: &[String]) -> i32 {
    use checkpoint_builder::oci::{command, Fault};
    let parsed = match command::parse(args) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("checkpoint-builder export-oci: {msg}\n{}", command::USAGE);
            return exit_codes::BUILDER_INPUT;
        }
    };
    match command::run(&parsed) {
        Ok(()) => exit_codes::SUCCESS,
        Err(e) => {
            report_error("export-oci failed", &e);
            match e.fault() {
                Fault::Checkpoint => exit_codes::CHECKPOINT_UNUSABLE,
                Fault::Invocation => exit_codes::BUILDER_INPUT,
                Fault::Io => exit_codes::BUILDER_INTERNAL,
            }
        }
    }
}

fn report_error(headline: &str, err: &dyn std::error::Error) {
    eprintln!("checkpoint-builder: error: {headline}: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}

/// The trust a `checkpointBase` gets (docs/trust.md); an unknown value keeps the default.
fn base_trust(env: &BuildEnvironment) -> BaseTrust {
    let value = env.attribute(checkpoint_builder::reuse::trust::TRUST_ATTRIBUTE);
    BaseTrust::from_attribute(value.as_deref()).unwrap_or_else(|reason| {
        eprintln!("checkpoint-builder: {reason}; only a checkpoint built at its path is used");
        BaseTrust::Built
    })
}

fn build(args: &[String]) -> i32 {
    let env = match BuildEnvironment::from_process() {
        Ok(env) => env,
        Err(e) => {
            report_error("cannot start the build", &e);
            return exit_codes::BUILDER_INPUT;
        }
    };
    let stock_args = match classify(args) {
        Invocation::Build { stock_args } => stock_args,
        Invocation::PassThrough { args } => {
            // Not a generic stdenv build: bash runs it exactly as stock would.
            eprintln!(
                "checkpoint-builder: not a generic stdenv build (custom builder script or args); \
                 running bash with the derivation's args unchanged"
            );
            let mut cmd = std::process::Command::new(&env.bash);
            cmd.args(&args);
            checkpoint_builder::build::runner::keep_inherited_signals(&mut cmd);
            let err = cmd.exec();
            eprintln!(
                "checkpoint-builder: error: cannot exec {}: {err}",
                env.bash.display()
            );
            return exit_codes::BUILDER_INTERNAL;
        }
    };
    let (arg0, arg1) = stock_positional(&stock_args);
    let helper = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            report_error("cannot locate the builder binary", &e);
            return exit_codes::BUILDER_INTERNAL;
        }
    };
    let outputs = declared_outputs(&env);
    let checkpoint_dir = outputs
        .iter()
        .find(|(name, _)| name == CHECKPOINT_OUTPUT)
        .map(|(_, path)| path.clone());
    let others: Vec<_> = outputs
        .iter()
        .filter(|(name, _)| name != CHECKPOINT_OUTPUT)
        .cloned()
        .collect();
    let name = env.attribute("name").unwrap_or_default();
    let system = env.attribute("system");
    let cache = env
        .attribute("checkpointCache")
        .filter(|c| !c.is_empty())
        .and_then(|dir| match DevCache::open(Path::new(&dir)) {
            Ok(cache) => Some((cache, dir)),
            Err(reason) => {
                eprintln!("checkpoint-builder: development cache disabled: {reason}");
                None
            }
        });
    // Layers go to the development cache entry when there is one (written as phases end, so a
    // failed build leaves them), else straight into the checkpoint output.
    let layers_dir = match (&cache, &checkpoint_dir) {
        (Some((cache, _)), _) => Some(cache.new_entry(&name)),
        (None, Some(dir)) => Some(dir.clone()),
        (None, None) => None,
    };
    let mut recorder = match &layers_dir {
        None => None,
        Some(dir) => {
            let meta = serde_json::json!({
                "builder": format!("checkpoint-builder {}", env!("CARGO_PKG_VERSION")),
                "name": name,
                "system": system,
                "outputs": others.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
                "output_paths": others
                    .iter()
                    .map(|(n, p)| (n.clone(), serde_json::Value::from(p.to_string_lossy().into_owned())))
                    .collect::<serde_json::Map<_, _>>(),
                "build_top": env.build_top.to_string_lossy(),
                // Where this checkpoint will be: a later build uses it as a base only at
                // this path (docs/trust.md). A cache entry of a build without a checkpoint
                // output has none.
                checkpoint_builder::reuse::trust::meta::CHECKPOINT_PATH: checkpoint_dir
                    .as_ref()
                    .map(|d| d.to_string_lossy().into_owned()),
            });
            let strict = env
                .attribute("checkpointStrict")
                .is_some_and(|v| !v.is_empty());
            match Recorder::start(dir, &env.build_top, &others, meta, strict) {
                Ok(r) => Some(r),
                Err(e) => {
                    report_error("cannot create the checkpoint", &e);
                    return exit_codes::BUILDER_INTERNAL;
                }
            }
        }
    };
    let bases: Vec<BaseCheckpoint> = match env.attribute("checkpointBase").filter(|b| !b.is_empty())
    {
        Some(_) if recorder.is_none() => {
            eprintln!(
                "checkpoint-builder: checkpointBase ignored: the derivation has no `{CHECKPOINT_OUTPUT}` output to continue"
            );
            Vec::new()
        }
        Some(dir) if !Path::new(&dir).exists() => {
            eprint!(
                "{}",
                checkpoint_builder::build::nix_log::missing_base_line(&dir)
            );
            Vec::new()
        }
        Some(dir) => match load_base(Path::new(&dir), system.as_deref(), base_trust(&env)) {
            Ok(base) => vec![base],
            Err(reason) => {
                eprintln!(
                    "checkpoint-builder: checkpoint {dir} rejected: {reason}; building from scratch"
                );
                Vec::new()
            }
        },
        None => match (&cache, &layers_dir) {
            (Some((cache, _)), Some(own)) => cache.candidates(&name, system.as_deref(), own),
            _ => Vec::new(),
        },
    };
    let options = BuildOptions {
        arg0,
        arg1,
        helper,
        outputs: others,
        hidden_output: checkpoint_dir
            .as_ref()
            .map(|_| CHECKPOINT_OUTPUT.to_owned()),
    };
    let outcome = match run_build(&env, &options, recorder.as_mut(), &bases) {
        Ok(outcome) => outcome,
        Err(e) => {
            report_error("the build could not be run", &e);
            return exit_codes::BUILDER_INTERNAL;
        }
    };
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
    let Some(rec) = recorder else {
        return outcome.status;
    };
    if outcome.status != 0 {
        if let (Some((_, cache_dir)), Some(entry)) = (&cache, &layers_dir) {
            eprintln!(
                "checkpoint-builder: the build's layers, and its tree at the failure, are kept in {}\n  enter it: checkpoint-builder shell --cache {cache_dir} {name} --at PHASE",
                entry.display()
            );
        }
        return outcome.status;
    }
    eprintln!(
        "checkpoint-builder: snapshots took {:.3}s in all, restores of earlier layers {:.3}s",
        rec.snapshot_time.as_secs_f64(),
        rec.restore_time.as_secs_f64()
    );
    let seconds = |f: fn(&StepReport) -> Option<std::time::Duration>| -> f64 {
        outcome
            .steps
            .iter()
            .filter_map(f)
            .map(|d| d.as_secs_f64())
            .sum()
    };
    eprintln!(
        "checkpoint-builder: own time: restore {:.3}s, snapshot {:.3}s, carry {:.3}s; phases {:.3}s",
        rec.restore_time.as_secs_f64(),
        rec.snapshot_time.as_secs_f64(),
        seconds(StepReport::carry),
        seconds(|s: &StepReport| s.work)
    );
    eprintln!(
        "checkpoint-builder: own CPU time: restore {:.3}s, snapshot {:.3}s",
        rec.restore_cpu.as_secs_f64(),
        rec.snapshot_cpu.as_secs_f64()
    );
    for note in rec.restore_notes.iter().chain(&rec.snapshot_notes) {
        eprintln!("checkpoint-builder:   {note}");
    }
    let finished = match rec.finish() {
        Ok(dir) => dir,
        Err(e) => {
            report_error("cannot finish the checkpoint", &e);
            return exit_codes::BUILDER_INTERNAL;
        }
    };
    if let (Some(_), Some(out)) = (&cache, &checkpoint_dir) {
        if let Err(e) = copy_checkpoint(&finished, out) {
            report_error("cannot copy the cache entry to the checkpoint output", &e);
            return exit_codes::BUILDER_INTERNAL;
        }
    }
    outcome.status
}
