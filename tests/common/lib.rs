//! Shared harness for the real-Nix integration tests.
