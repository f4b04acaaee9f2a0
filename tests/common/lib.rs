//! Harness for the real-Nix integration tests: builds a case derivation with the stock
//! builder and with checkpoint-builder, and compares what Nix reports and stores.
//!
//! Layering:
//! - pure: [`log`] reads nix-build's `internal-json` log (phases, log lines, exit code);
//!   [`nar`] rewrites store-path hashes to placeholders;
//! - effectful: [`nix`] runs `nix-instantiate`, `nix-build` and `nix-store`;
//!   [`compare`] builds a case both ways and explains any difference (unpacking both
//!   outputs and running `diff -r` when the NARs differ).
//!
//! The builds use a single-user store (`build-users-group ''`), so they need root and a
//! `nix-build` on `PATH`; without them every test fails with a message saying so.

pub mod checkpoint;
pub mod compare;
pub mod elf;
pub mod error;
pub mod forge;
pub mod hostile;
pub mod log;
pub mod nar;
pub mod nix;
pub mod outputs;
pub mod projects;
pub mod reuse_cases;

pub use compare::{check_case, compare_builds, failure_output, Comparison, Expectation, Outcome};
pub use error::HarnessError;
pub use nix::{builder_binary, nar_normalised, nix_build, BuildResult};
