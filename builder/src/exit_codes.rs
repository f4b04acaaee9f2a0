//! Exit codes of `checkpoint-builder`: an API, documented in the README.
//!
//! A build passes the status of the step that ended it through unchanged (as stock bash
//! would), so a phase can also end with one of the numbers below; the message on stderr tells
//! them apart.

/// The build (or command) succeeded.
pub const SUCCESS: i32 = 0;
/// Bad invocation or bad input the builder cannot work with: `$stdenv` missing, no usable
/// bash, unreadable `.attrs.json`, unknown subcommand or option, a `restore` target that is a
/// symlink, not empty, or too deep for the checkpoint's paths.
pub const BUILDER_INPUT: i32 = 2;
/// The builder itself failed (could not spawn bash, lost a phase's state dump, I/O error, a
/// panic).
pub const BUILDER_INTERNAL: i32 = 70;
/// A checkpoint given to a CLI command is unusable (corrupt, foreign, wrong version, beyond
/// the format's limits), whether `verify`, `restore`, `shell` or `diff` found it.
pub const CHECKPOINT_UNUSABLE: i32 = 65;
