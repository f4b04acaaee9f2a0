#!/usr/bin/env bash
# Downloads the Debian source packages of the real projects the tests and
# benchmarks build (GNU hello, Lua 5.4, zstd) with `apt-get source
# --download-only`, into a cache directory, and records their upstream orig
# tarballs (`*.orig.tar.*`; Debian's patches are not used).
#
# Usage: scripts/fetch-sources.sh [DIR]
#   DIR defaults to $CHECKPOINT_SOURCES, else <repo>/target/sources.
# Idempotent: a package whose orig tarball is already in DIR is not fetched
# again.  Needs deb-src in apt's sources (scripts/install-deps.sh adds it).
# Prints one line per project on stdout, `<project> <absolute tarball path>`,
# and writes the same lines to DIR/orig-tarballs.txt.
# tests/projects/*.nix find the same tarballs in DIR by their name prefix.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${CHECKPOINT_SOURCES:-$repo/target/sources}}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cd "$dir"

# project:binary package to ask apt for:source package (the tarball's prefix).
projects=(hello:hello:hello lua:lua5.4:lua5.4 zstd:zstd:libzstd)

# Tests run in parallel; one download at a time per directory.
exec 9>"$dir/.fetch.lock"
flock 9

shopt -s nullglob extglob
# orig_tarballs SRCPKG: sets `tarballs` to the package's orig tarballs in the
# current directory (the tarball itself, not its detached `.asc` signature).
orig_tarballs() {
  tarballs=("$1"_*.orig.tar.@(gz|xz|bz2|zst|lzma))
}
missing=()
for p in "${projects[@]}"; do
  IFS=: read -r _ bin src <<<"$p"
  orig_tarballs "$src"
  [ ${#tarballs[@]} -gt 0 ] || missing+=("$bin")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "fetch-sources.sh: apt-get source --download-only ${missing[*]} (into $dir)" >&2
  # As root apt would drop to `_apt`, which may not be able to write DIR.
  sandbox=()
  [ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
  if ! apt-get source --download-only -q "${sandbox[@]}" "${missing[@]}" >&2; then
    cat >&2 <<EOF
fetch-sources.sh: error: could not download the source packages ${missing[*]}.
  apt needs deb-src entries for bookworm and a fresh package index:
  run scripts/install-deps.sh as root (it enables deb-src and runs apt-get update).
EOF
    exit 1
  fi
fi

manifest=$(mktemp "$dir/.orig-tarballs.XXXXXX")
trap 'rm -f "$manifest"' EXIT
for p in "${projects[@]}"; do
  IFS=: read -r name _ src <<<"$p"
  orig_tarballs "$src"
  if [ ${#tarballs[@]} -ne 1 ]; then
    echo "fetch-sources.sh: error: expected one ${src}_*.orig.tar.* in $dir, found ${#tarballs[@]}: ${tarballs[*]:-none}" >&2
    exit 1
  fi
  printf '%s %s\n' "$name" "$dir/${tarballs[0]}" >>"$manifest"
done
mv "$manifest" "$dir/orig-tarballs.txt"
trap - EXIT
cat "$dir/orig-tarballs.txt"
