//! The `checkpoint-builder` binary: a derivation builder when Nix runs it, a CLI otherwise.
//!
//! It has its own C `main` (`no_main`) so that it sees how SIGPIPE was set when it started:
//! Rust's runtime would set it to "ignore" before `main`, and a build started with SIGPIPE
//! ignored must pass that on to its phases, as stock's bash does
//! ([`checkpoint_builder::build::signals::note_inherited`]).
#![no_main]

use checkpoint_builder::cli::{self, Invocation};
use checkpoint_builder::error::report;
use checkpoint_builder::exit_codes;

#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    checkpoint_builder::build::signals::note_inherited();
    // A panic must not unwind out of this C function (that aborts): it is reported by the
    // panic hook and becomes the internal-error exit code, as a Rust `main` would exit 101.
    let code = std::panic::catch_unwind(run).unwrap_or(exit_codes::BUILDER_INTERNAL);
    std::process::exit(code);
}

/// A build or a command ([`cli::classify`]); every error is reported here, in one place.
fn run() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let result = match cli::classify(&args[1..]) {
        Invocation::Build(build_args) => cli::build(build_args),
        Invocation::Command => cli::run(args),
    };
    result.unwrap_or_else(|e| report(&e))
}
