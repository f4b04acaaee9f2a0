#!/usr/bin/env bash
# Builds the static checkpoint-builder binary (no dynamic loader, so the Nix
# sandbox needs nothing from the host to run it) and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --locked \
  --target "$target" -p checkpoint-builder >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/$target/release/checkpoint-builder"
