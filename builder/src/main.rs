//! The `checkpoint-builder` binary: a derivation builder when Nix runs it, a CLI otherwise.
//!
//! It has its own C `main` (`no_main`) so that it sees how SIGPIPE was set when it started:
//! Rust's runtime would set it to "ignore" before `main`, and a build started with SIGPIPE
//! ignored must pass that on to its phases, as stock's bash does
//! ([`checkpoint_builder::build::signals::note_inherited`]).
#![no_main]

use checkpoint_builder::error::{report, Error};
use checkpoint_builder::exit_codes;

#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    checkpoint_builder::build::signals::note_inherited();
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
                Err(e) => report(&Error::Capture(e)),
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
    let command = match args[0].as_str() {
        "inspect" => "inspect",
        "verify" => "verify",
        "restore" => "restore",
        "shell" => "shell",
        "diff" => "diff",
        _ => "cache",
    };
    match result {
        Ok(code) => code,
        Err(source) => report(&Error::Command { command, source }),
    }
}

/// `export-oci`: the checkpoint as an OCI image layout (docs/oci-export.md).
fn export_oci(args: &[String]) -> i32 {
    use checkpoint_builder::oci::command;
    let parsed = match command::parse(args) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("checkpoint-builder export-oci: {msg}\n{}", command::USAGE);
            return exit_codes::BUILDER_INPUT;
        }
    };
    match command::run(&parsed) {
        Ok(()) => exit_codes::SUCCESS,
        Err(e) => report(&Error::ExportOci(e)),
    }
}

/// A build, as Nix runs it.
fn build(args: &[String]) -> i32 {
    match checkpoint_builder::build::run(args) {
        Ok(status) => status,
        Err(e) => report(&Error::Build(e)),
    }
}
