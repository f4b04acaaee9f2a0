//! checkpoint-builder library.
