#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine as root: installs what it needs (Nix,
# host toolchain, deb-src sources), checks formatting, lints and the module documentation's
# links (rustfmt, clippy and rustdoc with -D warnings), builds the static builder, then runs
# the unit tests and
# the real-Nix integration tests (conformance cases, real projects), and the corpus's CI subset.
#
# Environment:
#   CHECKPOINT_TEST_STDENV  a stdenv .nix with the interface of tests/stdenv/stdenv.nix to run
#                           the same cases on (e.g. ../shared/realstdenv/stdenv.nix together
#                           with NIXPKGS_STDENV_FILES); default: our own test stdenv.
#   CHECKPOINT_BUILDER      a prebuilt builder binary to test instead of building one.
#   CHECKPOINT_REAL_STDENV  the real nixpkgs stdenv (default: ../shared/realstdenv/stdenv.nix
#                           beside the repository, as CI has it): the conformance cases, the
#                           real projects, the daemon and the log test run on it a second time. When
#                           it is missing, that second pass is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if ! command -v cargo >/dev/null; then
  echo "test.sh: cargo is required (rustup's stable toolchain)" >&2
  exit 1
fi
# Formatting and lints first ([workspace.lints] in Cargo.toml): a warning fails the run.
if command -v rustup >/dev/null; then
  for component in rustfmt clippy; do
    rustup component list --installed | grep -q "^$component" || rustup component add "$component"
  done
fi
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The module documentation is how a newcomer finds where a change belongs: its links must resolve.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
# The sources the Rust tests build (tests/common/projects.rs fetches the same ones itself),
# first, so a download problem fails fast with its own message; bench/corpus.sh --ci fetches
# its projects' pins itself. No other pin is needed: one that has left the archive fails
# only what builds it.
scripts/fetch-sources.sh hello lua zstd >/dev/null
CHECKPOINT_BUILDER=${CHECKPOINT_BUILDER:-$(scripts/build-static.sh)}
export CHECKPOINT_BUILDER
echo "test.sh: testing $CHECKPOINT_BUILDER" >&2
cargo test --workspace --locked --release -- --test-threads=2

# The stdenv users run: nixpkgs' own setup.sh and default hooks (read from ../shared, never
# copied into the project).
real_stdenv=${CHECKPOINT_REAL_STDENV:-$(cd .. && pwd)/shared/realstdenv/stdenv.nix}
if [ "${CHECKPOINT_TEST_STDENV:-}" = "$real_stdenv" ]; then
  echo "test.sh: the suite already ran on $real_stdenv" >&2
elif [ -f "$real_stdenv" ]; then
  echo "test.sh: conformance cases, real projects, the daemon and the log test on $real_stdenv" >&2
  CHECKPOINT_TEST_STDENV=$real_stdenv cargo test -p integration-tests --locked --release \
    --test conformance --test real_projects --test daemon --test nix_log -- --test-threads=2
fi
# The corpus's CI subset (bench/corpus.sh --ci: zlib, ed and fmt from sources.lock) on the real
# stdenv: full build = stock, verify, and one-line, header and install-only changes built
# incrementally = stock clean builds, with fewer compiler runs.
if [ -f "$real_stdenv" ]; then
  echo "test.sh: the corpus's CI subset on $real_stdenv" >&2
  bench/corpus.sh --ci --stdenv "$real_stdenv" --out target/corpus-ci
else
  echo "test.sh: NOTE: no real nixpkgs stdenv at $real_stdenv (set CHECKPOINT_REAL_STDENV);" \
    "the cases ran on the test stdenv only" >&2
fi
