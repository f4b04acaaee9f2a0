#!/usr/bin/env bash
# Chain benchmark: the edit-build loop, where each build reuses the checkpoint of the build
# before it, itself incremental. For each project (default: hello pixman-meson zstd-cmake
# lua, tests/projects) and each builder given (--baseline first, when given, then
# --builder), in one run:
#
#   full     a full build with a `checkpoint` output
#   oneline  the `oneline` variant (one line of one C file) over full's checkpoint
#   back     the project as it was (variant `base`, the change undone) over oneline's
#            checkpoint: an incremental build from an incremental checkpoint, timed
#
# `back` is then built again --rounds times, the builders taking turns (nix-store --realise
# --check; the time of every round and their median are printed). Prints the times, what
# `back` did with configurePhase and buildPhase (its log's decision lines), whether its
# outputs equal full's (bench/nar-compare.py: NARs, each build's own paths normalised), and
# back / oneline and,
# with a baseline, the new builder's back / the baseline's.
#
# Usage: bench/chain.sh [--stdenv FILE] [--builder BIN] [--baseline BIN] [--rounds N]
#                       [PROJECT...]
#   --stdenv  default ../shared/realstdenv/stdenv.nix beside the repository, else
#             tests/stdenv/stdenv.nix
#   --builder default: scripts/build-static.sh builds one
#   --rounds  default 3
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
stdenv_nix=$repo/../shared/realstdenv/stdenv.nix
[ -f "$stdenv_nix" ] || stdenv_nix=$repo/tests/stdenv/stdenv.nix
builder=""
baseline=""
rounds=3
projects=()
while [ $# -gt 0 ]; do
  case $1 in
    --stdenv) stdenv_nix=$2; shift 2 ;;
    --builder) builder=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "chain.sh: unknown option $1" >&2; exit 2 ;;
    *) projects+=("$1"); shift ;;
  esac
done
[ ${#projects[@]} -gt 0 ] || projects=(hello pixman-meson zstd-cmake lua)
stdenv_nix=$(realpath "$stdenv_nix")
[ -n "$builder" ] || builder=$("$repo/scripts/build-static.sh")
builders=(new)
declare -A bin=([new]=$(realpath "$builder"))
if [ -n "$baseline" ]; then
  builders=(baseline new)
  bin[baseline]=$(realpath "$baseline")
fi

sources=$(project_sources "" "${projects[@]}")

work=$(mktemp -d "${TMPDIR:-/tmp}/chain-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
salt="chain-bench-$(date +%s%N)-$$"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", b - a }'; }
ratio() {
  case "$1$2" in
    *-*) echo - ;;
    *) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a / b }' ;;
  esac
}

# instantiate PROJECT BUILDER [nix-instantiate args...]: the .drv path.
instantiate() {
  local project=$1 b=$2
  shift 2
  nix-instantiate "$repo/tests/projects" -A "$project" --arg stdenvNix "$stdenv_nix" \
    --arg sources "$sources" --arg builder "${bin[$b]}" --arg checkpoint true \
    --argstr benchSalt "$salt-$b" "$@" 2>"$work/eval.err" || { cat "$work/eval.err" >&2; return 1; }
}
checkpoint_of() { nix-store -q --outputs "$1" | grep -- '-checkpoint$'; }

# build NAME DRV [--check]: realises DRV, prints its wall seconds (`-` when it failed).
build() {
  local name=$1 drv=$2 t0 t1 status=0
  shift 2
  echo "chain.sh: $name" >&2
  t0=$(now)
  nix-store --realise "${nix_opts[@]}" "$@" "$drv" >"$work/$name.out" 2>"$work/$name.log" || status=$?
  t1=$(now)
  # --check of a build whose checkpoint differs (it records times) fails after building.
  if [ "$status" = 0 ] || grep -q 'may not be deterministic' "$work/$name.log"; then
    secs "$t0" "$t1"
  else
    echo "chain.sh: $name failed:" >&2
    tail -n 20 "$work/$name.log" >&2
    echo -
  fi
}

declare -A full oneline back first rounds_of same decision
for project in "${projects[@]}"; do
  for b in "${builders[@]}"; do
    key=$project.$b
    drv=$(instantiate "$project" "$b")
    full[$key]=$(build "$key.full" "$drv")
    full_drv=$drv
    drv=$(instantiate "$project" "$b" --argstr variant oneline --argstr base "$(checkpoint_of "$full_drv")")
    oneline[$key]=$(build "$key.oneline" "$drv")
    drv=$(instantiate "$project" "$b" --argstr variant base --argstr base "$(checkpoint_of "$drv")")
    back[$key]=$drv
    first[$key]=$(build "$key.back" "$drv")
    same[$key]=$(python3 "$repo/bench/nar-compare.py" "$work/$key.full.out" "$work/$key.back.out" |
      head -n 1 || true)
    decision[$key]=$(nix-store -l "$drv" 2>/dev/null |
      grep -E '^checkpoint-builder: (configurePhase|buildPhase) +(ran|restored)' |
      sed 's/^checkpoint-builder: //; s/  */ /g' | cut -c1-110 | paste -sd '|' -)
    rounds_of[$key]=""
  done
  for r in $(seq 1 "$rounds"); do
    for b in "${builders[@]}"; do
      key=$project.$b
      rounds_of[$key]+="$(build "$key.back.$r" "${back[$key]}" --check) "
    done
  done
done

echo
echo "== Chain: an incremental build from an incremental checkpoint ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, rounds=$rounds)"
echo "stdenv: $stdenv_nix"
for b in "${builders[@]}"; do echo "$b: ${bin[$b]}"; done
echo "seconds: full; oneline over full; back (the change undone) over oneline, the first build"
echo "and the median of the rounds; same: back's outputs equal full's (bench/nar-compare.py)"
printf '%-13s %-8s %7s %7s %7s %7s | %8s %9s\n' project builder full oneline back rounds back/ol same
for project in "${projects[@]}"; do
  for b in "${builders[@]}"; do
    key=$project.$b
    # shellcheck disable=SC2086
    med=$(lower_median ${rounds_of[$key]})
    printf '%-13s %-8s %7s %7s %7s %7s | %8s %9s\n' "$project" "$b" "${full[$key]}" \
      "${oneline[$key]}" "${first[$key]}" "$med" "$(ratio "$med" "${oneline[$key]}")" \
      "${same[$key]%%[ :]*}"
  done
done
echo "rounds (seconds, in order):"
for project in "${projects[@]}"; do
  for b in "${builders[@]}"; do
    printf '  %-13s %-8s %s\n' "$project" "$b" "${rounds_of[$project.$b]}"
  done
done
if [ -n "$baseline" ]; then
  echo "back, new / baseline (medians of the rounds):"
  for project in "${projects[@]}"; do
    # shellcheck disable=SC2086
    printf '  %-13s %s\n' "$project" \
      "$(ratio "$(lower_median ${rounds_of[$project.new]})" "$(lower_median ${rounds_of[$project.baseline]})")"
  done
fi
echo "back's decisions:"
for project in "${projects[@]}"; do
  for b in "${builders[@]}"; do
    echo "  $project $b: ${decision[$project.$b]}"
    case ${same[$project.$b]} in
      identical*) ;;
      *) echo "    outputs differ from full's (rerun nar-compare.py for where): ${same[$project.$b]}" ;;
    esac
  done
done
