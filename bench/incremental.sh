#!/usr/bin/env bash
# Incremental builds against issue 19's goals, in one run: the small and medium projects
# through bench/reuse.sh, the synthetic ones (tests/projects/synthetic.nix, about 40 and
# 400 MB of build directory) through bench/scale.sh, one after the other with the same
# builder, stdenv, build directory and number of runs; their whole reports first, then one
# table per goal from the figures both wrote (their --summary):
#
#   one-line change   oneline / limit, the limit being the same change built outside Nix
#                     (warm make + make install + the stdenv's fixupPhase over what it
#                     installed) plus a no-op Nix build; goal 1.2, 1.5 for a build
#                     directory of 400 MB or more; and oneline / nixpkgs'
#                     checkpointBuildTools flow (theirs), the ratio of the medians and the
#                     median of the per-round ratios; goal below 1. The no-op Nix build is
#                     tests/projects' `noop` on the same stdenv (what every build on it
#                     costs around its work: sandbox, setup and hooks, the phases, the
#                     output; no fixupPhase, timed with the limit instead), ten fresh
#                     builds, five before the projects and five after, the median; the
#                     ratio with reuse.sh's and scale.sh's stricter floor (a raw
#                     derivation whose /bin/sh only creates $out) is shown beside it
#   install-only      install / stock full build; goal 0.05 for the large project. Beside
#                     it, what no builder goes below while it runs the stdenv's
#                     installPhase and fixupPhase: (after + fixup + no-op) / stock, with
#                     after and fixup timed outside Nix as above
#   own time          the builder's own time (base check + restore + analysis + snapshot +
#                     carry) of each one-line build, split, with the MB its restores wrote
#                     and its snapshots hashed, and the tree; then, for the `tool` variant
#                     (the same few KB relinked in both synthetic projects), the large
#                     project's figures over the small one's: the goal is own time that
#                     grows with the change (a ratio near 1), not with the tree
#
# Usage: bench/incremental.sh [--stdenv FILE] [--builder BIN] [--tmpdir DIR] [--runs N]
#                             [--no-theirs] [PROJECT...]
#   --stdenv   the stdenv.nix to build on (default: tests/stdenv/stdenv.nix; the real
#              nixpkgs one, ../shared/realstdenv/stdenv.nix, is what users run)
#   --builder  checkpoint-builder binary (default: $CHECKPOINT_BUILDER, else the output
#              of scripts/build-static.sh, built once for both scripts)
#   --tmpdir   where Nix and the plain builds build (see reuse.sh and scale.sh)
#   --runs     repetitions per project (default 3; the tables show medians)
#   --no-theirs  leave checkpointBuildTools out
#   PROJECT    synthetic-small and synthetic go to scale.sh, the others (hello, lua,
#              zstd, zstd-cmake, pixman-meson) to reuse.sh; default: lua zstd zstd-cmake
#              pixman-meson synthetic-small synthetic
# About 40 minutes with the defaults on a 2-core machine.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
stdenv_nix=$repo/tests/stdenv/stdenv.nix
builder=${CHECKPOINT_BUILDER:-}
runs=3
common=()
projects=()
while [ $# -gt 0 ]; do
  case $1 in
    --stdenv) stdenv_nix=$2; shift 2 ;;
    --builder) builder=$2; shift 2 ;;
    --tmpdir) export TMPDIR=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-theirs) common+=(--no-theirs); shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "incremental.sh: unknown option $1" >&2; exit 2 ;;
    *) projects+=("$1"); shift ;;
  esac
done
[ ${#projects[@]} -gt 0 ] || projects=(lua zstd zstd-cmake pixman-meson synthetic-small synthetic)
small=() large=()
for p in "${projects[@]}"; do
  case $p in
    synthetic*) large+=("$p") ;;
    *) small+=("$p") ;;
  esac
done
stdenv_nix=$(realpath "$stdenv_nix")
[ -n "$builder" ] || builder=$("$repo/scripts/build-static.sh")
builder=$(realpath "$builder")
common+=(--stdenv "$stdenv_nix" --builder "$builder" --runs "$runs")

work=$(mktemp -d "${TMPDIR:-/tmp}/incremental-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
summary=$work/summary
: >"$summary"
now() { date +%s.%N; }

# noop_builds N: N fresh builds of tests/projects' noop on the stdenv (inputs realised
# untimed), each build's wall time on a line of $work/noop.
noop_builds() {
  local drv t0 t1 inputs
  for _ in $(seq 1 "$1"); do
    drv=$(nix-instantiate "$repo/tests/projects" -A noop --arg stdenvNix "$stdenv_nix" \
      --arg sources "$work" --argstr benchSalt "incremental-noop-$(date +%s%N)-$$-$RANDOM" 2>/dev/null) ||
      { echo "incremental.sh: cannot instantiate the no-op build" >&2; return 0; }
    mapfile -t inputs < <(nix-store -q --references "$drv" | grep '\.drv$' || true)
    [ ${#inputs[@]} -eq 0 ] || nix-store --realise "${nix_opts[@]}" "${inputs[@]}" >/dev/null 2>&1
    t0=$(now)
    nix-store --realise "${nix_opts[@]}" "$drv" >/dev/null 2>&1 ||
      { echo "incremental.sh: the no-op build failed" >&2; continue; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >>"$work/noop"
  done
}

started=$(date -u +%Y-%m-%dT%H:%MZ)
status=0
noop_builds 5
if [ ${#small[@]} -gt 0 ]; then
  "$repo/bench/reuse.sh" "${common[@]}" --log-lines 0 --summary "$summary" "${small[@]}" || status=$?
fi
if [ ${#large[@]} -gt 0 ]; then
  "$repo/bench/scale.sh" "${common[@]}" --summary "$summary" "${large[@]}" || status=$?
fi
noop_builds 5
# shellcheck disable=SC2046 # one time per build
noop=$(lower_median $(cat "$work/noop" 2>/dev/null))

# get PROJECT KEY: a figure of the summary, `-` when it has none.
get() { awk -v p="$1" -v k="$2" '$1 == p && $2 == k { v = $3 } END { print (v == "" ? "-" : v) }' "$summary"; }
# calc EXPR VALUE...: EXPR over a, b, c, d (the values in order) in awk, `-` when any
# value is unknown or the result is not a number.
calc() {
  local expr=$1
  shift
  case " $* " in *" - "* | *"  "*) echo -; return ;; esac
  awk -v a="${1:-0}" -v b="${2:-0}" -v c="${3:-0}" -v d="${4:-0}" "BEGIN { $expr }"
}
# met VALUE GOAL [below]: yes when VALUE <= GOAL (< GOAL with `below`), `-` when unknown.
met() {
  if [ "$1" = - ] || [ "$2" = - ]; then echo -; return; fi
  awk -v v="$1" -v g="$2" -v strict="${3:-}" \
    'BEGIN { print ((strict ? v < g : v <= g) ? "yes" : "no") }'
}

echo
echo "== Incremental builds against issue 19's goals (started $started, $(nproc) cores, runs=$runs)"
echo "stdenv:  $stdenv_nix"
echo "builder: $builder"
echo "builds in: ${TMPDIR:-/tmp}; seconds are medians over the runs; tree: the plain build"
echo "directory after its build, MB; limit = warm + after + fixup (outside Nix, in nix-shell of"
echo "the stock derivation) + no-op (a no-op build on the stdenv: $noop s, median of"
echo "$(wc -l <"$work/noop" 2>/dev/null || echo 0): $(paste -sd ' ' "$work/noop" 2>/dev/null));"
echo "ol/lim0: with floor (a raw derivation's build, as reuse.sh and scale.sh) for no-op"
echo
echo "one-line change: goal oneline/limit <= 1.2 (1.5 from 400 MB of tree), oneline/theirs < 1"
printf '%-16s %6s %8s %8s %7s %5s %4s %8s %8s %9s %9s %4s\n' project tree oneline limit ol/lim goal met \
  ol/lim0 theirs ol/theirs per-round met
for p in "${projects[@]}"; do
  limit=$(calc 'printf "%.2f", a + b + c + d' "$(get "$p" warm)" "$(get "$p" after)" \
    "$(get "$p" fixup)" "$noop")
  limit0=$(calc 'printf "%.2f", a + b + c + d' "$(get "$p" warm)" "$(get "$p" after)" \
    "$(get "$p" fixup)" "$(get "$p" floor)")
  ol=$(get "$p" oneline) tree=$(get "$p" tree)
  goal=$(calc 'print (a >= 400 ? 1.5 : 1.2)' "$tree")
  ratio=$(calc 'printf "%.2f", a / b' "$ol" "$limit")
  theirs=$(get "$p" theirs)
  vs=$(calc 'printf "%.2f", a / b' "$ol" "$theirs")
  rounds=$(calc 'printf "%.2f", a' "$(get "$p" theirs-rounds)")
  printf '%-16s %6s %8s %8s %7s %5s %4s %8s %8s %9s %9s %4s\n' "$p" "$tree" "$ol" "$limit" "$ratio" "$goal" \
    "$(met "$ratio" "$goal")" "$(calc 'printf "%.2f", a / b' "$ol" "$limit0")" "$theirs" "$vs" "$rounds" \
    "$(met "$rounds" 1 below)"
done

echo
echo "install-only change: goal install/stock <= 0.05 for the large project; least/stock ="
echo "(after + fixup + no-op) / stock, what a build running the stdenv's installPhase and"
echo "fixupPhase takes at least"
printf '%-16s %6s %8s %8s %9s %6s %6s %6s %10s\n' project tree install stock inst/stk after fixup no-op least/stk
for p in "${projects[@]}"; do
  stock=$(get "$p" stock)
  printf '%-16s %6s %8s %8s %9s %6s %6s %6s %10s\n' "$p" "$(get "$p" tree)" "$(get "$p" install)" "$stock" \
    "$(calc 'printf "%.3f", a / b' "$(get "$p" install)" "$stock")" \
    "$(get "$p" after)" "$(get "$p" fixup)" "$noop" \
    "$(calc 'printf "%.3f", (a + b + c) / d' "$(get "$p" after)" "$(get "$p" fixup)" "$noop" "$stock")"
done

echo
echo "the builder's own time in the one-line builds (seconds; MB written by its restores, hashed"
echo "by its snapshots), and in the tool variant of the synthetic projects:"
printf '%-16s %-7s %6s %7s %8s %8s %8s %6s %8s %7s\n' project variant own restore analysis snapshot carry \
  tree written hashed
for p in "${projects[@]}"; do
  for v in oneline tool; do
    [ "$(get "$p" "$v.own")" != - ] || continue
    printf '%-16s %-7s %6s %7s %8s %8s %8s %6s %8s %7s\n' "$p" "$v" "$(get "$p" "$v.own")" \
      "$(get "$p" "$v.restore")" "$(get "$p" "$v.analysis")" "$(get "$p" "$v.snapshot")" \
      "$(get "$p" "$v.carry")" "$(get "$p" tree)" "$(get "$p" "$v.written")" "$(get "$p" "$v.hashed")"
  done
done
if [ ${#large[@]} -gt 1 ]; then
  first=${large[0]} last=${large[${#large[@]} - 1]}
  echo "$last over $first, the same change (tool): goal own time near 1x, i.e. growing with the change"
  over() { calc 'printf "%.1fx", a / b' "$(get "$last" "$1")" "$(get "$first" "$1")"; }
  echo "  own $(over tool.own) (restore $(over tool.restore), analysis $(over tool.analysis)," \
    "snapshot $(over tool.snapshot)), written $(over tool.written), hashed $(over tool.hashed)," \
    "tree $(over tree)"
fi
exit "$status"
