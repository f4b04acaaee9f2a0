//! checkpoint-builder library.
pub mod checkpoint;
