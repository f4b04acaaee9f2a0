//! The command line: which invocations are a build (what Nix runs, arguments untouched) and
//! which are commands, the commands' clap definitions (one file per subcommand) and running
//! them into one [`Error`].
//!
//! People's output goes to stderr, data to stdout (`--json` where a program reads it).

pub mod cache;
pub mod common;
pub mod diff;
pub mod error;
pub mod export_oci;
pub mod inspect;
pub mod restore;
pub mod shell;
pub mod verify;

#[cfg(test)]
mod tests;

pub use error::CliError;

use crate::error::Error;
use clap::{ArgAction, Parser, Subcommand};
use std::ffi::OsString;

/// The help's closing text: the builder's own use and the exit codes (an API).
const AFTER_HELP: &str = "\
As a derivation's builder (Nix runs it):
  builder = <path>/bin/checkpoint-builder;
  args = [ ];   # or the stdenv's own: -e <source-stdenv.sh> <default-builder.sh>
When the first argument is not a command, or there is none, the binary runs a build and
hands every argument to it unchanged (a custom builder script's arguments go to bash).

Exit codes: 0 success; 2 bad invocation or input; 65 checkpoint unusable; 70 builder error;
during a build, the status of the step that ended it.";

/// A Nix builder that runs each stdenv phase in its own bash process, and the commands that
/// read the checkpoints it writes.
#[derive(Debug, Parser)]
#[command(
    name = "checkpoint-builder",
    version,
    disable_version_flag = true,
    after_help = AFTER_HELP,
    subcommand_required = true,
    term_width = 100
)]
pub struct Cli {
    /// Print the version
    #[arg(long, action = ArgAction::Version)]
    version: Option<bool>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the build in the current environment (what Nix does)
    ///
    /// Every argument after `build` goes to the build unparsed, `--help` included.
    #[command(disable_help_flag = true)]
    Build {
        /// What Nix passes: nothing, or `-e SOURCE-STDENV BUILDER-SCRIPT`, or a custom script's
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    Inspect(inspect::Args),
    Verify(verify::Args),
    Restore(restore::Args),
    Shell(shell::Args),
    Diff(diff::Args),
    Cache(cache::Args),
    ExportOci(export_oci::Args),
    /// The in-phase helper that reports a phase's shell state (internal)
    #[command(name = "__capture", hide = true)]
    Capture {
        nonce: Option<String>,
    },
}

/// What one run of the binary is.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// A build, with these arguments, untouched: clap never sees them.
    Build(Vec<OsString>),
    /// A command (or `--help`, `--version`) for [`run`] to parse.
    Command,
}

/// The first arguments that name a command; anything else, or nothing, is a build.
const COMMAND_WORDS: &[&str] = &[
    "inspect",
    "verify",
    "restore",
    "shell",
    "diff",
    "cache",
    "export-oci",
    "__capture",
    "help",
    "--help",
    "-h",
    "--version",
];

/// Tells a build from a command by the first argument (`args` without the program name).
/// `build` runs a build with everything after it; an unknown first word or none runs a build
/// with every argument (what Nix passes: nothing, or `-e source-stdenv.sh builder.sh`).
pub fn classify(args: &[OsString]) -> Invocation {
    match args.first().and_then(|a| a.to_str()) {
        Some("build") => Invocation::Build(args[1..].to_vec()),
        Some(word) if COMMAND_WORDS.contains(&word) => Invocation::Command,
        _ => Invocation::Build(args.to_vec()),
    }
}

/// Runs a build with `args` as Nix gave them.
// One error per process, reported once: its size does not matter.
#[allow(clippy::result_large_err)]
pub fn build(args: Vec<OsString>) -> Result<i32, Error> {
    let args = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| Error::Usage(format!("argument {a:?} is not valid UTF-8")))
        })
        .collect::<Result<Vec<String>, Error>>()?;
    Ok(crate::build::run(&args)?)
}

/// Parses a command line (`args` with the program name first) and runs the command: its exit
/// status, or the error `main` reports. `--help` and `--version` print and succeed; a usage
/// error is [`Error::Usage`] (exit code 2).
#[allow(clippy::result_large_err)]
pub fn run(args: Vec<OsString>) -> Result<i32, Error> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.exit_code() == 0 => {
            // --help, --version: what was asked for, on stdout.
            print!("{}", e.render());
            return Ok(crate::exit_codes::SUCCESS);
        }
        Err(e) => return Err(Error::Usage(usage_message(&e.render().to_string()))),
    };
    let command = |command: &'static str| move |source| Error::Command { command, source };
    match cli.command {
        Command::Build { args } => Ok(crate::build::run(&args)?),
        Command::Inspect(a) => inspect::run(&a).map_err(command("inspect")),
        Command::Verify(a) => verify::run(&a).map_err(command("verify")),
        Command::Restore(a) => restore::run(&a).map_err(command("restore")),
        Command::Shell(a) => shell::run(&a).map_err(command("shell")),
        Command::Diff(a) => diff::run(&a).map_err(command("diff")),
        Command::Cache(a) => cache::run(&a).map_err(command("cache")),
        Command::ExportOci(a) => export_oci::run(&a)
            .map(|()| crate::exit_codes::SUCCESS)
            .map_err(Error::ExportOci),
        Command::Capture { nonce } => crate::build::capture::run(nonce.as_deref().unwrap_or(""))
            .map(|()| crate::exit_codes::SUCCESS)
            .map_err(Error::Capture),
    }
}

/// Clap's usage error in our format: its message as the headline, the usage line below it,
/// without clap's own `error:` prefix and closing pointer to `--help` ([`Error::hint`] says
/// that).
fn usage_message(rendered: &str) -> String {
    let mut lines = rendered
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"));
    let headline = lines.next().unwrap_or("bad invocation");
    let mut message = headline
        .strip_prefix("error: ")
        .unwrap_or(headline)
        .to_owned();
    for line in lines {
        message.push_str("\n  ");
        message.push_str(line.trim_start());
    }
    message
}
