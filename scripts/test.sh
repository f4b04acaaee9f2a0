#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine as root: installs what it needs (Nix,
# host toolchain, deb-src sources), builds the static builder, then runs the unit tests and
# the real-Nix integration tests (conformance cases, real projects).
#
# Environment:
#   CHECKPOINT_TEST_STDENV  a stdenv .nix with the interface of tests/stdenv/stdenv.nix to run
#                           the same cases on (e.g. ../shared/realstdenv/stdenv.nix together
#                           with NIXPKGS_STDENV_FILES); default: our own test stdenv.
#   CHECKPOINT_BUILDER      a prebuilt builder binary to test instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if ! command -v cargo >/dev/null; then
  echo "test.sh: cargo is required (rustup's stable toolchain)" >&2
  exit 1
fi
scripts/fetch-sources.sh >/dev/null
CHECKPOINT_BUILDER=${CHECKPOINT_BUILDER:-$(scripts/build-static.sh)}
export CHECKPOINT_BUILDER
echo "test.sh: testing $CHECKPOINT_BUILDER" >&2
cargo test --workspace --locked --release -- --test-threads=2
