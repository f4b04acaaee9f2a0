#!/usr/bin/env bash
# Full-build benchmark: builds real projects (default: lua and zstd) from
# scratch with the stock builder and with checkpoint-builder, in one run, and
# prints wall times and the ratios ours/stock.  Not a test: it asserts nothing
# beyond "the build succeeded", but it does report whether `out` is
# NAR-identical to stock's after each output's own hash is replaced by a
# placeholder.
#
# Builders ("kinds"), alternated within each run:
#   stock  bash running `source $stdenv/setup; genericBuild` (one process)
#   ours   checkpoint-builder, outputs = [ "out" ]: one bash process per phase,
#          shell state carried between them, no snapshots
#   ckpt   checkpoint-builder with a `checkpoint` output as well: every phase
#          also snapshotted into the checkpoint (the design's full-build cost)
#
# Every build is fresh: a unique `benchSalt` attribute makes new derivations
# (and so new output paths) on every run, so Nix never reuses a result.  The
# inputs (host stdenv, source tarball, builder binary) are realised before the
# clock starts; the time is that of `nix-store --realise` of the project's
# derivation alone (sandbox set-up included, evaluation excluded).
#
# Usage: bench/full-build.sh [--stdenv FILE] [--builder BIN] [--sources DIR]
#                            [--runs N] [--no-checkpoint] [--log-lines N]
#                            [PROJECT...]
#   --stdenv   the stdenv.nix to build on (default: tests/stdenv/stdenv.nix;
#              /work/shared/realstdenv/stdenv.nix needs NIXPKGS_STDENV_FILES)
#   --builder  checkpoint-builder binary (default: $CHECKPOINT_BUILDER, else
#              the output of scripts/build-static.sh); `none` = stock only
#   --sources  orig tarball cache (default: as scripts/fetch-sources.sh)
#   --runs     builds per project and kind, alternating (default 1); with
#              more than one, a median row per project
#   --no-checkpoint  leave out the `ckpt` kind
#   --log-lines  lines of the log tail shown for our last builds (default 16;
#              the builder prints its per-phase table there) and for failures
#   PROJECT    among hello, lua, zstd (default: lua zstd)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
stdenv_nix=$repo/tests/stdenv/stdenv.nix
builder=${CHECKPOINT_BUILDER:-}
sources=""
runs=1
log_lines=16
checkpoint=1
projects=()
while [ $# -gt 0 ]; do
  case $1 in
    --stdenv) stdenv_nix=$2; shift 2 ;;
    --builder) builder=$2; shift 2 ;;
    --sources) sources=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-checkpoint) checkpoint=; shift ;;
    --log-lines) log_lines=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "full-build.sh: unknown option $1" >&2; exit 2 ;;
    *) projects+=("$1"); shift ;;
  esac
done
[ ${#projects[@]} -gt 0 ] || projects=(lua zstd)
stdenv_nix=$(realpath "$stdenv_nix")

sources=$(project_sources "$sources" "${projects[@]}")

if [ -z "$builder" ]; then
  echo "full-build.sh: building checkpoint-builder (scripts/build-static.sh)" >&2
  if ! builder=$("$repo/scripts/build-static.sh"); then
    echo "full-build.sh: scripts/build-static.sh failed; benchmarking stock only" >&2
    builder=none
  fi
fi
[ "$builder" = none ] || builder=$(realpath "$builder")

kinds=(stock)
if [ "$builder" != none ]; then
  kinds+=(ours)
  [ -z "$checkpoint" ] || kinds+=(ckpt)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/full-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }

# instantiate PROJECT KIND SALT: prints the .drv path.
instantiate() {
  local project=$1 kind=$2 salt=$3 args=()
  case $kind in
    ours) args=(--arg builder "$builder") ;;
    ckpt) args=(--arg builder "$builder" --arg checkpoint true) ;;
  esac
  nix-instantiate "$repo/tests/projects" -A "$project" \
    --arg stdenvNix "$stdenv_nix" --arg sources "$sources" \
    --argstr benchSalt "$salt" "${args[@]}" 2>"$work/eval.err" ||
    { cat "$work/eval.err" >&2; return 1; }
}

# nar_digest OUTPATH: sha256 of the NAR with the path's own hash replaced by a
# same-length placeholder (output paths differ between the builders).
nar_digest() {
  local hash
  hash=$(basename "$1" | cut -c1-32)
  nix-store --dump "$1" |
    perl -pe 'BEGIN { binmode STDIN; binmode STDOUT; $h = shift @ARGV } s/\Q$h\E/"x" x 32/ge' "$hash" |
    sha256sum | cut -c1-16
}

# build PROJECT KIND RUN: realises a fresh derivation; records wall seconds,
# status, output paths, log and the digest of `out` in $work/PROJECT.KIND.RUN.*.
build() {
  local project=$1 kind=$2 run=$3 drv inputs t0 t1 status=0 out
  local base=$work/$project.$kind.$run
  drv=$(instantiate "$project" "$kind" "bench-$(date +%s%N)-$$-$RANDOM-$kind") || {
    echo eval-failed >"$base.status"
    return
  }
  # Everything but the project itself, outside the clock.
  mapfile -t inputs < <(nix-store -q --references "$drv" | grep '\.drv$' || true)
  if [ ${#inputs[@]} -gt 0 ]; then
    nix-store --realise "${nix_opts[@]}" "${inputs[@]}" >/dev/null 2>"$work/inputs.err" ||
      { cat "$work/inputs.err" >&2; echo inputs-failed >"$base.status"; return; }
  fi
  echo "full-build.sh: building $project with $kind (run $run): $drv" >&2
  t0=$(now)
  nix-store --realise "${nix_opts[@]}" "$drv" >"$base.out" 2>"$base.log" || status=$?
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }' >"$base.secs"
  if [ "$status" = 0 ]; then
    echo ok >"$base.status"
    out=$(grep -v -- '-checkpoint$' "$base.out" | head -n 1)
    nar_digest "$out" >"$base.nar"
  else
    echo "failed($status)" >"$base.status"
  fi
}

# Other work on the machine skews wall times: show the load around the runs.
# (CPU time cannot be had from here: Nix's sandboxed builder is not a child
# that nix-store reaps, so `times` does not see it.)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for project in "${projects[@]}"; do
  for run in $(seq 1 "$runs"); do
    for kind in "${kinds[@]}"; do
      build "$project" "$kind" "$run"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

field() { cat "$work/$1" 2>/dev/null || echo -; }

# median PROJECT KIND: median seconds of the successful runs, or `-`.
median() {
  local run values=()
  for run in $(seq 1 "$runs"); do
    [ "$(field "$1.$2.$run.status")" = ok ] && values+=("$(field "$1.$2.$run.secs")")
  done
  [ ${#values[@]} -gt 0 ] || { echo -; return; }
  printf '%s\n' "${values[@]}" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A B: A / B with three decimals, or `-` when either is missing.
ratio() {
  case "$1$2" in
    *-*) echo - ;;
    *) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a / b }' ;;
  esac
}

echo
echo "== Full build: ours vs stock ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, runs=$runs)"
echo "stdenv:  $stdenv_nix"
echo "builder: $builder"
echo "load:    $load_before (before), $load_after (after)"
echo "seconds: wall time of nix-store --realise of the project's derivation;"
echo "same:    \`out\` NAR-identical to stock's (own hash replaced by a placeholder)"
header=$(printf '%-7s %6s %8s' project run stock_s)
for kind in "${kinds[@]:1}"; do
  header+=$(printf ' %8s %7s %5s' "${kind}_s" ratio same)
done
echo "$header"
for project in "${projects[@]}"; do
  for run in $(seq 1 "$runs") median; do
    if [ "$run" = median ]; then
      [ "$runs" -gt 1 ] || continue
      stock_s=$(median "$project" stock)
    else
      stock_s=-
      [ "$(field "$project.stock.$run.status")" != ok ] || stock_s=$(field "$project.stock.$run.secs")
    fi
    line=$(printf '%-7s %6s %8s' "$project" "$run" "$stock_s")
    for kind in "${kinds[@]:1}"; do
      secs=- same=
      if [ "$run" = median ]; then
        secs=$(median "$project" "$kind")
      else
        base=$project.$kind.$run
        [ "$(field "$base.status")" != ok ] || secs=$(field "$base.secs")
        same=-
        if [ -f "$work/$base.nar" ] && [ -f "$work/$project.stock.$run.nar" ]; then
          same=NO
          [ "$(field "$base.nar")" != "$(field "$project.stock.$run.nar")" ] || same=yes
        fi
      fi
      line+=$(printf ' %8s %7s %5s' "$secs" "$(ratio "$secs" "$stock_s")" "$same")
    done
    echo "$line"
  done
done

# Failures, then the log tails of our last builds: the builder ends its log
# with a per-phase table (phase, seconds, carry overhead).
for project in "${projects[@]}"; do
  for run in $(seq 1 "$runs"); do
    for kind in "${kinds[@]}"; do
      status=$(field "$project.$kind.$run.status")
      if [ "$status" != ok ]; then
        echo
        echo "== $project, $kind (run $run): $status"
        tail -n "$log_lines" "$work/$project.$kind.$run.log" 2>/dev/null || true
      elif [ "$run" = "$runs" ] && [ "$kind" != stock ] && [ "$log_lines" -gt 0 ]; then
        echo
        echo "== $project, $kind (run $run): last $log_lines log lines"
        grep -v "you did not specify .--add-root." "$work/$project.$kind.$run.log" |
          tail -n "$log_lines"
      fi
    done
  done
done
