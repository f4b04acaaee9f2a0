//! checkpoint-builder: a Nix derivation builder that runs every stdenv phase in its own bash
//! process, carrying the whole shell state between them, and checkpoints the build.
//!
//! Layering (pure core, effectful shell):
//! - pure: [`shell`] (parse `declare -p`, model the state, generate restore and driver code),
//!   [`invocation`] (classify argv), the manifest and diff logic in [`checkpoint`];
//! - effectful: [`environment`] (read what Nix gave), [`runner`] (spawn bash per step, process
//!   groups, signals), [`capture`] (the in-phase helper), [`memfile`], snapshot/restore I/O in
//!   [`checkpoint`];
//! - `main.rs` maps every error to its exit code and prints it, in one place ([`error`]).

pub mod build;
pub mod checkpoint;
pub mod civil_date;
pub mod cli;
pub mod dev_cache;
pub mod error;
pub mod exit_codes;
pub mod meta;
pub mod oci;
pub mod reuse;
pub mod shell;
