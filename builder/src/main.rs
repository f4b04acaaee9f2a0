//! The `checkpoint-builder` binary: a derivation builder when Nix runs it, a CLI otherwise.

use checkpoint_builder::environment::BuildEnvironment;
use checkpoint_builder::exit_codes;
use checkpoint_builder::invocation::{classify, stock_positional, Invocation};
use checkpoint_builder::runner::{format_report, run_build, BuildOptions};
use std::os::unix::process::CommandExt;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("__capture") => {
            match checkpoint_builder::capture::run(args.get(1).map_or("", |s| s)) {
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
        _ => build(&args),
    };
    std::process::exit(code);
}

const HELP: &str = "\
checkpoint-builder: a Nix builder that runs each stdenv phase in its own bash process.

As a derivation's builder (Nix runs it):
  builder = <path>/bin/checkpoint-builder;
  args = [ ];                      # or the stdenv's own: -e <source-stdenv.sh> <default-builder.sh>
Any other args (a custom builder script) are handed to bash unchanged.

Commands:
  build [ARGS...]    run the build in the current environment (what Nix does)
  --version          print the version
";

fn report_error(headline: &str, err: &dyn std::error::Error) {
    eprintln!("checkpoint-builder: error: {headline}: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
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
            let err = std::process::Command::new(&env.bash).args(&args).exec();
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
    let options = BuildOptions { arg0, arg1, helper };
    match run_build(&env, &options) {
        Ok(outcome) => {
            eprint!("{}", format_report(&outcome.steps));
            if let Some(why) = &outcome.ended_by {
                eprintln!("checkpoint-builder: {why}");
            }
            outcome.status
        }
        Err(e) => {
            report_error("the build could not be run", &e);
            exit_codes::BUILDER_INTERNAL
        }
    }
}
