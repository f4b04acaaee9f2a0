//! Bash shell state: capture (`declare -p` parsing), storage form, and restore generation.
//!
//! Everything here is pure (bytes and text in, bytes and text out); spawning bash lives in
//! [`crate::build::runner`].

pub mod bytes;
pub mod declare;
pub mod driver;
pub mod funcdef;
pub mod host;
pub mod names;
pub mod phase_skip;
pub mod quote;
pub mod restore;
pub mod state;
pub mod traps;
pub mod validate;

pub use bytes::ByteString;
pub use declare::{Attributes, Value, Variable};
pub use state::ShellState;
