#!/usr/bin/env bash
# Version-bump benchmark (issue 14): what a checkpoint saves when only the package's name
# changes (a version bump that keeps the source and the name's length), in one run.
# For each project (default: lua zstd zstd-cmake):
#
#   stock    full build, stock builder (bash + genericBuild), no checkpoint
#   full     full build, checkpoint-builder with a `checkpoint` output: the base (variant
#            `rename-base`: the project as is, with the marker the `rename` variant keeps)
#   rename   the `rename` variant (tests/projects/variant.nix: the last character of
#            `name` changed, nothing else) with checkpointBase = full's checkpoint:
#            configure reruns over the earlier tree, the build tool finds nothing to do
#
# and prints the seconds (wall time of `nix-store --realise`, inputs realised first, untimed),
# the compiler runs of full and rename (from the build log), and rename / stock (goal: at
# most 0.1 where the version does not reach the code). `out` equality with a clean build is
# what tests/real_reuse.rs asserts (`*_rename_*`), not this script.
#
# Usage: bench/version-bump.sh [--stdenv FILE] [--builder BIN] [--sources DIR] [PROJECT...]
#   --stdenv   the stdenv.nix to build on (default: tests/stdenv/stdenv.nix)
#   --builder  checkpoint-builder binary (default: $CHECKPOINT_BUILDER, else
#              the output of scripts/build-static.sh)
#   --sources  orig tarball cache (default: as scripts/fetch-sources.sh)
#   PROJECT    among hello, lua, zstd, zstd-cmake
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
stdenv_nix=$repo/tests/stdenv/stdenv.nix
builder=${CHECKPOINT_BUILDER:-}
sources=""
projects=()
while [ $# -gt 0 ]; do
  case $1 in
    --stdenv) stdenv_nix=$2; shift 2 ;;
    --builder) builder=$2; shift 2 ;;
    --sources) sources=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "version-bump.sh: unknown option $1" >&2; exit 2 ;;
    *) projects+=("$1"); shift ;;
  esac
done
[ ${#projects[@]} -gt 0 ] || projects=(lua zstd zstd-cmake)
stdenv_nix=$(realpath "$stdenv_nix")

sources=$(project_sources "$sources" "${projects[@]}")
if [ -z "$builder" ]; then
  echo "version-bump.sh: building checkpoint-builder (scripts/build-static.sh)" >&2
  builder=$("$repo/scripts/build-static.sh")
fi
builder=$(realpath "$builder")

work=$(mktemp -d "${TMPDIR:-/tmp}/version-bump.XXXXXX")
trap 'rm -rf "$work"' EXIT

# instantiate PROJECT SALT [nix-instantiate args...]: prints the .drv path.
instantiate() {
  local project=$1 salt=$2
  shift 2
  nix-instantiate "$repo/tests/projects" -A "$project" \
    --arg stdenvNix "$stdenv_nix" --arg sources "$sources" \
    --argstr benchSalt "$salt" "$@" 2>"$work/eval.err" ||
    { cat "$work/eval.err" >&2; return 1; }
}

# realise NAME DRV: the inputs untimed, then DRV timed; writes $work/NAME.{secs,out,log,status}.
realise() {
  local name=$1 drv=$2 inputs t0 t1 status=0
  mapfile -t inputs < <(nix-store -q --references "$drv" | grep '\.drv$' || true)
  if [ ${#inputs[@]} -gt 0 ]; then
    nix-store --realise "${nix_opts[@]}" "${inputs[@]}" >/dev/null 2>"$work/inputs.err" ||
      { cat "$work/inputs.err" >&2; echo inputs-failed >"$work/$name.status"; return 0; }
  fi
  echo "version-bump.sh: $name: $drv" >&2
  t0=$(date +%s.%N)
  nix-store --realise "${nix_opts[@]}" "$drv" >"$work/$name.out" 2>"$work/$name.log" || status=$?
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }' >"$work/$name.secs"
  if [ "$status" = 0 ]; then echo ok >"$work/$name.status"; else echo "failed($status)" >"$work/$name.status"; fi
}

ok() { [ "$(cat "$work/$1.status" 2>/dev/null)" = ok ]; }
value() { if ok "$1"; then cat "$work/$1.secs"; else echo -; fi; }
checkpoint_of() { grep -- '-checkpoint$' "$work/$1.out" | head -n 1; }

# compiles PROJECT NAME: compiler runs in a build's log (each build system prints its own).
compiles() {
  local pattern
  case $1 in
    zstd) pattern='^(CC|AS) .*\.o$' ;;
    zstd-cmake) pattern='^\[[0-9]+/[0-9]+\] .* -c ' ;;
    *) pattern=' -c .*\.o |\.o .* -c ' ;;
  esac
  if ok "$2"; then sed 's/\x1b\[[0-9;]*m//g' "$work/$2.log" | grep -cE "$pattern" || true; else echo -; fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for project in "${projects[@]}"; do
  salt="version-bump-$(date +%s%N)-$$-$RANDOM"
  realise "$project.stock" "$(instantiate "$project" "$salt-stock")"
  realise "$project.full" "$(instantiate "$project" "$salt" \
    --arg builder "$builder" --arg checkpoint true --argstr variant rename-base)"
  if ok "$project.full"; then
    realise "$project.rename" "$(instantiate "$project" "$salt" \
      --arg builder "$builder" --arg checkpoint true \
      --argstr variant rename --argstr base "$(checkpoint_of "$project.full")")"
  fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "== Version bump: same source, name changed ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
echo "stdenv:  $stdenv_nix"
echo "builder: $builder"
echo "load:    $load_before (before), $load_after (after)"
printf '%-11s %7s %7s %7s | %9s %11s | %11s\n' project stock full rename \
  "cc (full)" "cc (rename)" rename/stock
for project in "${projects[@]}"; do
  stock=$(value "$project.stock") full=$(value "$project.full") rename=$(value "$project.rename")
  ratio=-
  [ "$stock$rename" = "${stock//-/}${rename//-/}" ] &&
    ratio=$(awk -v a="$rename" -v b="$stock" 'BEGIN { printf "%.3f\n", a / b }')
  printf '%-11s %7s %7s %7s | %9s %11s | %11s\n' "$project" "$stock" "$full" "$rename" \
    "$(compiles "$project" "$project.full")" "$(compiles "$project" "$project.rename")" "$ratio"
done
echo
echo "goal: rename/stock <= 0.1 where the version does not reach the code"
for project in "${projects[@]}"; do
  for kind in stock full rename; do
    if ! ok "$project.$kind"; then
      echo "== $project $kind: $(cat "$work/$project.$kind.status" 2>/dev/null || echo missing)"
      tail -n 30 "$work/$project.$kind.log" 2>/dev/null || true
    fi
  done
  if ok "$project.rename"; then
    echo "== $project rename: the builder's decisions"
    grep -E '^checkpoint-builder: [a-zA-Z]+Phase +(ran|restored)' "$work/$project.rename.log" || true
  fi
done
