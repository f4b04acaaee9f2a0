//! checkpoint-builder: a Nix derivation builder that runs every stdenv phase in its own bash
//! process, carrying the whole shell state between them, and checkpoints the build.
//!
//! Where things are (pure core, effectful shell):
//! - [`build`]: one build, the effectful driver: what Nix gave ([`build::environment`]),
//!   classifying argv ([`build::invocation`], pure), a bash process per step with its process
//!   group and signals ([`build::runner`], [`build::signals`]), a checkpoint layer after each
//!   step ([`build::recorder`]), what the log says ([`build::nix_log`]);
//! - [`shell`]: the carried state: parse `declare -p`, model it, generate the restore and driver
//!   code (pure);
//! - [`checkpoint`]: the engine: manifests, diffs and overlays (pure), snapshot, restore and
//!   the blob store (effectful, all file access through `checkpoint::fsops`);
//! - [`reuse`]: which earlier checkpoint and layers a build may take over: keys, plans and rules
//!   (pure), loading a base and resuming over its tree ([`reuse::incremental`]);
//! - [`cli`]: the debugging commands (inspect, diff, restore, shell, verify, cache,
//!   export-oci), [`oci`]: OCI image export, [`dev_cache`]: the development cache;
//! - `main.rs` maps every error to its exit code and prints it, in one place ([`error`],
//!   [`exit_codes`]).

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
