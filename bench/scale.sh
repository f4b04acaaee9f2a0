#!/usr/bin/env bash
# Scale benchmark: what the builder itself costs on a large build directory, and how that
# grows with the build directory (issue 19). For each project (default: synthetic-small
# synthetic, tests/projects/synthetic.nix: about 40 and 400 MB of build directory) and each
# builder given (--baseline first, when given, then --builder), in one run:
#
#   stock    full build with the stock builder (bash + genericBuild), no checkpoint: what
#            install-only builds are set against (issue 19: at most 0.05 of it)
#   full     full build with a `checkpoint` output (the base)
#   oneline  the `oneline` variant (one line of one C file) over full's checkpoint
#   install  the `install` variant (postInstall only) over full's checkpoint
#   tool     the `oneline-tool` variant over full's checkpoint: one line of the small
#            program `synth-tool`, so the change (a few KB relinked) is the same in every
#            project while the tree grows: what of the builder's own time grows from one
#            project to the next grows with the tree, not with the change
#   oneline-src  with --source-edit: the same one-line change made in the source tarball
#            (the `oneline-src` variant), as a new release or a local checkout brings it:
#            unpackPhase runs instead of being restored, and patchPhase changes nothing
#
# and nixpkgs' checkpointBuildTools flow on the same project with the stock builder
# (tests/projects/checkpoint-build-tools.nix, needs rsync on the host; --no-theirs skips it):
#
#   theirs-prepare  the build that keeps the sources and the built tree (its `full` column),
#                   after the full builds
#   theirs          the `oneline` variant through that flow (its `oneline` column), built
#                   in turn with the builders' oneline builds
#
# then the limit outside Nix, after the full builds: the tarball unpacked into a temporary
# directory, `make -j2`, the one-line edit, `make -j2` again (warm), `make install` (after)
# and the stdenv's fixupPhase over the installed files (fixup: run again after each round
# of one-line builds, over a fresh copy of what make installed, and the median of those
# taken, so that it runs after what the builds did, as each build runs after the one
# before), in `nix-shell --pure` of the project's stock
# derivation (so with the compiler wrapper and variables its Nix builds have; warm and after
# with the host's tools as the benchmark runs are printed below the table), and the floor (a
# trivial sandboxed build, median of three). Prints the wall times, the builder's own time of
# each build as its log reports it (restore, snapshot, carry, phases; a builder without that
# line shows its older "snapshots took … restores …" line), each restore's line, and the
# ratios: oneline / (warm + after + floor) (issue 19's limit), the same with fixup counted in
# the limit (the fixup any build in Nix runs over the products the change rewrote), install
# / stock, and each builder's own time against the baseline's; then, per variant, the
# builder's own time beside the megabytes its restores wrote (what grows with the tree make
# reads) and its snapshots hashed (what grows with the change), and the last project's
# against the first's.
#
# --tmpdir DIR: the directory Nix builds in (TMPDIR of nix-store), e.g. a tmpfs: on this
# machine's ext4 (no journal) creating files right after Nix deleted the previous build
# directory is slow enough to hide everything else. The limit's plain build runs there too.
#
# --out-dir DIR: where the limit's `make install` and fixupPhase write (its prefix). By
# default /tmp when it is on the filesystem of /nix/store, else the work directory (said in
# the output): a Nix build writes its outputs into the store, and installing and stripping
# there can cost more than on a tmpfs (on this machine's ext4, fixupPhase over the large
# project's program and archive took 1.65 to 2.93 s against 1.37 to 1.40 s in /dev/shm).
#
# --source-edit: also build oneline-src, and time the unpacking of the tarball outside Nix
# (unpack), which any Nix build of a new source runs; oneline-src's ratio counts it in the
# limit (oneline-src / (warm + after + fixup + floor + unpack)).
#
# --runs N: each oneline, install, tool, oneline-src and theirs build N times (its outputs
# deleted before each run after the first; the builders, and theirs among the oneline
# builds, take turns within a run, so a drift of the machine's speed over the minutes of a
# run does not fall on one flow), the median in the table and every run's time on a `runs:`
# line (for an even N the lower of the middle two); the log lines shown are the median
# run's. On this 2-core machine one run's ratios move by a quarter from run to run.
#
# --summary FILE: also write the figures of --builder's builds as `PROJECT KEY VALUE` lines
# (bench/incremental.sh reads them): stock and full (one build each), the medians of oneline,
# install, tool and theirs (its one-line build), theirs-rounds (the median of the per-round
# ratios against it), the limit's warm, after, fixup and floor, tree (the plain build
# directory, MB), and VARIANT.FIELD for the fields of lib.sh's own_time_fields in each
# variant's median build.
#
# Usage: bench/scale.sh [--stdenv FILE] [--builder BIN] [--baseline BIN] [--tmpdir DIR]
#                       [--out-dir DIR] [--runs N] [--no-theirs] [--source-edit]
#                       [--summary FILE] [PROJECT...]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
stdenv_nix=$repo/tests/stdenv/stdenv.nix
builder=${CHECKPOINT_BUILDER:-}
baseline=""
theirs=1
source_edit=""
out_root=""
runs=1
summary=""
projects=()
while [ $# -gt 0 ]; do
  case $1 in
    --stdenv) stdenv_nix=$2; shift 2 ;;
    --builder) builder=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --tmpdir) export TMPDIR=$2; shift 2 ;;
    --out-dir) out_root=$2; shift 2 ;;
    --no-theirs) theirs=""; shift ;;
    --source-edit) source_edit=1; shift ;;
    --runs) runs=$2; shift 2 ;;
    --summary) summary=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "scale.sh: unknown option $1" >&2; exit 2 ;;
    *) projects+=("$1"); shift ;;
  esac
done
[ ${#projects[@]} -gt 0 ] || projects=(synthetic-small synthetic)
[ -z "$summary" ] || summary=$(realpath -m "$summary")
# The variants built over each full build's checkpoint, in this order.
variants=(oneline install oneline-tool ${source_edit:+oneline-src})
stdenv_nix=$(realpath "$stdenv_nix")
[ -n "$builder" ] || builder=$("$repo/scripts/build-static.sh")
builder=$(realpath "$builder")
builders=(new)
declare -A bin=([new]=$builder)
if [ -n "$baseline" ]; then
  builders=(baseline new)
  bin[baseline]=$(realpath "$baseline")
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/scale-bench.XXXXXX")
out_root=$(limit_outputs_root "$out_root" "$work")
outs=$(mktemp -d "$out_root/scale-bench-outputs.XXXXXX")
trap 'chmod -R u+w "$work" "$outs" 2>/dev/null || true; rm -rf "$work" "$outs"' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", b - a }'; }

instantiate() {
  local project=$1 salt=$2
  shift 2
  nix-instantiate "$repo/tests/projects" -A "$project" --arg stdenvNix "$stdenv_nix" \
    --arg sources "$work" --argstr benchSalt "$salt" "$@" 2>"$work/eval.err" ||
    { cat "$work/eval.err" >&2; return 1; }
}

# realise NAME DRV: inputs untimed, then DRV timed; $work/NAME.{secs,out,log,status}.
realise() {
  local name=$1 drv=$2 inputs t0 t1 status=0
  mapfile -t inputs < <(nix-store -q --references "$drv" | grep '\.drv$' || true)
  [ ${#inputs[@]} -eq 0 ] || nix-store --realise "${nix_opts[@]}" "${inputs[@]}" >/dev/null 2>&1
  echo "scale.sh: $name" >&2
  t0=$(now)
  nix-store --realise "${nix_opts[@]}" "$drv" >"$work/$name.out" 2>"$work/$name.log" || status=$?
  t1=$(now)
  secs "$t0" "$t1" >"$work/$name.secs"
  if [ "$status" = 0 ]; then echo ok >"$work/$name.status"; else echo "failed($status)" >"$work/$name.status"; fi
}
# realise_run NAME DRV RUN: run RUN of DRV as $work/NAME.RUN.*; from the second run on, the
# outputs of the run before are deleted first, so Nix builds it again.
realise_run() {
  local name=$1 drv=$2 run=$3
  if [ "$run" -gt 1 ]; then
    # shellcheck disable=SC2046
    nix-store --delete $(nix-store -q --outputs "$drv") >/dev/null 2>&1 ||
      echo "scale.sh: cannot delete the outputs of $name before run $run" >&2
  fi
  realise "$name.$run" "$drv"
}
# median_run NAME: NAME.* become the files of its median run (by time, among the runs that
# succeeded; the first run when none did); every run's time goes to NAME.runs.
median_run() {
  local name=$1 r pick
  for r in $(seq 1 "$runs"); do printf '%s ' "$(value "$name.$r")"; done >"$work/$name.runs"
  pick=$(for r in $(seq 1 "$runs"); do ok "$name.$r" && echo "$(cat "$work/$name.$r.secs") $r"; done |
    sort -n | awk '{ a[NR] = $2 } END { if (NR) print a[int((NR + 1) / 2)] }')
  for f in secs out log status; do
    cp "$work/$name.${pick:-1}.$f" "$work/$name.$f" 2>/dev/null || true
  done
}
ok() { [ "$(cat "$work/$1.status" 2>/dev/null)" = ok ]; }
value() { if ok "$1"; then cat "$work/$1.secs"; else echo -; fi; }
checkpoint_of() { grep -- '-checkpoint$' "$work/$1.out" | head -n 1; }
out_of() { grep -v -- '-checkpoint$' "$work/$1.out" | head -n 1; }

# plain_steps: plain()'s builds in the unpacked source root $root (variables of plain()):
# cold make, the one-line edit, warm make, make install into $prefix; a time is written only
# when its step succeeded.
plain_steps() {
  local t0 t1
  cd "$root" || return 1
  make -j2 SHELL=/bin/bash PREFIX="$prefix" >"$dir.cold.log" 2>&1 || return 1
  sed -i 's/"synthetic project"/"synthetic project (one-line change)"/' src/u00000.c || return 1
  t0=$(now)
  make -j2 SHELL=/bin/bash PREFIX="$prefix" >"$dir.warm.log" 2>&1 || return 1
  t1=$(now)
  secs "$t0" "$t1" >"$dir.warm"
  t0=$(now)
  make SHELL=/bin/bash PREFIX="$prefix" install >"$dir.install.log" 2>&1 || return 1
  t1=$(now)
  secs "$t0" "$t1" >"$dir.after"
  # Kept for the rounds' fixups (limit_fixup_steps); bare builds run none.
  if declare -F fixupPhase >/dev/null; then cp -a "$prefix" "$prefix.installed" || return 1; fi
  stdenv_fixup "$dir" "$dir.fixup.0.log" "$dir.fixup.0" "$prefix"
}

# limit_fixup_steps: the limit's fixupPhase again, in round $run (a variable of the caller),
# over a fresh copy of what make installed (untimed); its time into $dir.fixup.$run.
limit_fixup_steps() {
  chmod -R u+w "$prefix" 2>/dev/null || true
  rm -rf "$prefix"
  cp -a "$prefix.installed" "$prefix"
  stdenv_fixup "$dir" "$dir.fixup.$run.log" "$dir.fixup.$run" "$prefix"
}

# plain PROJECT MODE: warm make and install outside Nix. MODE env: in `nix-shell --pure` of
# the project's stock derivation, with the toolchain its Nix builds have (the stdenv's
# compiler wrapper and its variables); $work/plain-PROJECT.{warm,after,mb}. MODE bare: the
# host's tools as the benchmark runs; $work/bare-PROJECT.{warm,after}.
plain() {
  local project=$1 mode=$2 dir src root drv script prefix
  dir=$work/$([ "$mode" = env ] && echo plain || echo bare)-$project
  prefix=$outs/$(basename "$dir")/out
  src=$(nix-store --realise "${nix_opts[@]}" "$(nix-instantiate "$repo/tests/projects" -A "$project.src" \
    --arg stdenvNix "$stdenv_nix" --arg sources "$work" 2>/dev/null)" 2>/dev/null)
  mkdir -p "$dir"
  local t0 t1
  t0=$(now)
  tar -xzf "$src" -C "$dir"
  t1=$(now)
  secs "$t0" "$t1" >"$dir.unpack"
  root=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  if [ "$mode" = bare ]; then
    (plain_steps) || echo "scale.sh: the plain build of $project ($mode) failed" >&2
    return 0
  fi
  drv=$(instantiate "$project" "scale-bench-plain-$(date +%s%N)-$$-$RANDOM")
  echo "$drv" >"$dir.drv"
  script=$dir.sh
  { declare -p dir root prefix; declare -f now secs plain_steps limit_fixup_steps stdenv_fixup; } >"$script"
  # nix-shell puts its shell's directory first on PATH: a directory holding only bash keeps
  # /bin (and the host's gcc in it) behind the stdenv's.
  mkdir -p "$work/shell"
  ln -sf /bin/bash "$work/shell/bash"
  NIX_BUILD_SHELL=$work/shell/bash nix-shell "$drv" --pure \
    --run "source $(printf '%q' "$script"); plain_steps" >"$dir.shell.log" 2>&1 ||
    { echo "scale.sh: the plain build of $project ($mode) failed" >&2; tail -n 20 "$dir.shell.log" >&2; }
  du -sm "$root" | cut -f1 >"$dir.mb"
  cp "$dir.fixup.0" "$dir.fixup" 2>/dev/null || true
}

# limit_fixup PROJECT RUN: the limit's fixupPhase again after round RUN's one-line builds, so
# that it runs where they run and after what they did. On this machine's ext4 (no journal)
# each new inode is allocated past the ones freed in the last minutes, and strip writes
# every member of an archive to a file of its own (2,500 for the large project): a fixup
# right after another costs about twice one after a pause, in Nix or outside.
limit_fixup() {
  local project=$1 run=$2 dir=$work/plain-$1
  [ -f "$dir.drv" ] && [ -f "$dir.fixup.0" ] || return 0
  NIX_BUILD_SHELL=$work/shell/bash nix-shell "$(cat "$dir.drv")" --pure \
    --run "source $(printf '%q' "$dir.sh"); run=$run; limit_fixup_steps" >>"$dir.shell.log" 2>&1 ||
    echo "scale.sh: the limit's fixup of $project in round $run failed" >&2
}

# limit_fixup_median PROJECT: the limit's fixup time is the median of the rounds' (the lower
# of the middle two for an even number); their times, after the first one's, go to
# plain-PROJECT.fixup.runs.
limit_fixup_median() {
  local dir=$work/plain-$1 r
  [ -f "$dir.fixup.1" ] || return 0
  { printf 'after the plain build %s; rounds' "$(cat "$dir.fixup.0" 2>/dev/null || echo -)"
    for r in $(seq 1 "$runs"); do printf ' %s' "$(cat "$dir.fixup.$r" 2>/dev/null || echo -)"; done
  } >"$dir.fixup.runs"
  # shellcheck disable=SC2046 # one time per round
  lower_median $(for r in $(seq 1 "$runs"); do cat "$dir.fixup.$r" 2>/dev/null || true; done) >"$dir.fixup"
}

floor() {
  local i drv t0 t1 values=()
  for i in 1 2 3; do
    drv=$(nix-instantiate --expr "derivation { name = \"scale-bench-floor\";
      system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo > \$out\" ];
      salt = \"$(date +%s%N)-$$-$RANDOM\"; }" 2>/dev/null)
    t0=$(now)
    nix-store --realise "${nix_opts[@]}" "$drv" >/dev/null 2>&1
    t1=$(now)
    values+=("$(secs "$t0" "$t1")")
  done
  printf '%s\n' "${values[@]}" | sort -n | sed -n 2p >"$work/floor"
}

# own NAME: the builder's own-time line of a build's log.
own() {
  grep -o 'own CPU time: .*' "$work/$1.log" 2>/dev/null | sed 's/^/(CPU) /' || true
  grep -o 'own time: .*' "$work/$1.log" 2>/dev/null ||
    grep -o 'snapshots took .*' "$work/$1.log" 2>/dev/null || echo -
}

for project in "${projects[@]}"; do
  realise "$project.stock" "$(instantiate "$project" "scale-bench-stock-$(date +%s%N)-$$-$RANDOM")"
  for b in "${builders[@]}"; do
    salt="scale-bench-$(date +%s%N)-$$-$RANDOM"
    echo "$salt" >"$work/$project.$b.salt"
    realise "$project.$b.full" "$(instantiate "$project" "$salt" --arg builder "${bin[$b]}" --arg checkpoint true)"
  done
  if [ -n "$theirs" ]; then
    theirs_salt="scale-bench-theirs-$(date +%s%N)-$$-$RANDOM"
    realise "$project.theirs.full" "$(instantiate "$project" "$theirs_salt" --argstr theirs prepare)"
  fi
  # The limit before the rounds: its fixup runs again in each one-line round (limit_fixup).
  plain "$project" env
  plain "$project" bare
  for variant in "${variants[@]}"; do
    declare -A drv_of=()
    members=("${builders[@]}")
    for b in "${builders[@]}"; do
      ok "$project.$b.full" || continue
      drv_of[$b]=$(instantiate "$project" "$(cat "$work/$project.$b.salt")" \
        --arg builder "${bin[$b]}" --arg checkpoint true --argstr variant "$variant" \
        --argstr base "$(checkpoint_of "$project.$b.full")")
    done
    # checkpointBuildTools' one-line builds take their turns in the same rounds.
    if [ "$variant" = oneline ] && [ -n "$theirs" ]; then
      members+=(theirs)
      if ok "$project.theirs.full"; then
        drv_of[theirs]=$(instantiate "$project" "$theirs_salt" \
          --argstr theirs "$(out_of "$project.theirs.full")" --argstr variant oneline)
      fi
    fi
    for run in $(seq 1 "$runs"); do
      for b in "${members[@]}"; do
        if [ -n "${drv_of[$b]:-}" ]; then
          realise_run "$project.$b.$variant" "${drv_of[$b]}" "$run"
        fi
      done
      [ "$variant" != oneline ] || limit_fixup "$project" "$run"
    done
    for b in "${members[@]}"; do median_run "$project.$b.$variant"; done
    unset drv_of
  done
  for b in "${builders[@]}" ${theirs:+theirs}; do
    for variant in oneline oneline-src oneline-tool; do
      program=synth
      [ "$variant" != oneline-tool ] || program=synth-tool
      if ok "$project.$b.$variant"; then
        "$(out_of "$project.$b.$variant")/bin/$program" | grep -q 'one-line change' ||
          echo "      the change is NOT visible" >"$work/$project.$b.$variant.note"
      fi
    done
  done
  limit_fixup_median "$project"
done
floor

f=$(cat "$work/floor")
# ol_limit ONELINE WARM AFTER FLOOR [FIXUP [UNPACK]]: oneline / (warm + after + floor
# [+ fixup [+ unpack]]), `-` when unknown.
ol_limit() {
  awk -v o="$1" -v w="$2" -v a="$3" -v f="$4" -v x="${5:-0}" -v u="${6:-0}" \
    'BEGIN { if (o == "-" || w == "-" || x == "-" || u == "-") print "-"; else printf "%.2f", o / (w + a + f + x + u) }'
}
echo
echo "== Scale: the builder's own time against the build directory ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, runs=$runs)"
echo "stdenv: $stdenv_nix"
echo "builds in: ${TMPDIR:-/tmp}"
echo "the limit installs into: $(on_store_filesystem "$out_root")"
for b in "${builders[@]}"; do echo "$b: ${bin[$b]}"; done
echo "floor (trivial sandboxed build): $f s"
printf '%-16s %-8s %6s %7s %7s %7s %7s %7s %6s %6s %6s | %9s %9s %9s\n' project builder dir_MB stock full oneline \
  install tool warm after fixup "ol/limit" "ol/lim+fx" "inst/stk"
for project in "${projects[@]}"; do
  stock=$(value "$project.stock")
  warm=$(cat "$work/plain-$project.warm" 2>/dev/null || echo -)
  after=$(cat "$work/plain-$project.after" 2>/dev/null || echo -)
  fixup=$(cat "$work/plain-$project.fixup" 2>/dev/null || echo -)
  mb=$(cat "$work/plain-$project.mb" 2>/dev/null || echo -)
  for b in "${builders[@]}" ${theirs:+theirs}; do
    full=$(value "$project.$b.full") ol=$(value "$project.$b.oneline") inst=$(value "$project.$b.install")
    printf '%-16s %-8s %6s %7s %7s %7s %7s %7s %6s %6s %6s | %9s %9s %9s\n' "$project" "$b" "$mb" "$stock" "$full" \
      "$ol" "$inst" "$(value "$project.$b.oneline-tool")" "$warm" "$after" "$fixup" \
      "$(ol_limit "$ol" "$warm" "$after" "$f")" \
      "$(ol_limit "$ol" "$warm" "$after" "$f" "$fixup")" \
      "$(awk -v i="$inst" -v s="$stock" 'BEGIN { if (i == "-" || s == "-") print "-"; else printf "%.3f", i / s }')"
  done
done
echo "tool: the one-line change in synth-tool's source (the same few KB relinked in every project)"
echo "fixup: the stdenv's fixupPhase over what make installed, which every Nix build runs"
echo "after installPhase on the outputs it wrote; ol/lim+fx counts it in the limit"
echo "warm, after, fixup: in nix-shell of the stock derivation (the stdenv's compiler wrapper);"
echo "with the host's tools as the benchmark runs instead:"
for project in "${projects[@]}"; do
  warm=$(cat "$work/bare-$project.warm" 2>/dev/null || echo -)
  after=$(cat "$work/bare-$project.after" 2>/dev/null || echo -)
  printf '  %-16s warm %s, after %s' "$project" "$warm" "$after"
  for b in "${builders[@]}" ${theirs:+theirs}; do
    printf ', %s ol/limit %s' "$b" "$(ol_limit "$(value "$project.$b.oneline")" "$warm" "$after" "$f")"
  done
  echo
done
if [ -n "$source_edit" ]; then
  echo "oneline-src: the one-line change in the source tarball (unpackPhase runs); unpack: the"
  echo "project's tarball unpacked outside Nix; limit: warm + after + fixup + floor + unpack"
  for project in "${projects[@]}"; do
    warm=$(cat "$work/plain-$project.warm" 2>/dev/null || echo -)
    after=$(cat "$work/plain-$project.after" 2>/dev/null || echo -)
    fixup=$(cat "$work/plain-$project.fixup" 2>/dev/null || echo -)
    unpack=$(cat "$work/plain-$project.unpack" 2>/dev/null || echo -)
    for b in "${builders[@]}"; do
      src_ol=$(value "$project.$b.oneline-src")
      printf '  %-16s %-8s oneline-src %s, oneline %s, unpack %s, oneline-src / limit %s\n' \
        "$project" "$b" "$src_ol" "$(value "$project.$b.oneline")" "$unpack" \
        "$(ol_limit "$src_ol" "$warm" "$after" "$f" "$fixup" "$unpack")"
      cat "$work/$project.$b.oneline-src.note" 2>/dev/null || true
    done
  done
fi
if [ "$runs" -gt 1 ]; then
  echo "runs (seconds, in order; the table shows the median):"
  for project in "${projects[@]}"; do
    for b in "${builders[@]}" ${theirs:+theirs}; do
      for variant in "${variants[@]}"; do
        if [ -f "$work/$project.$b.$variant.runs" ]; then
          printf '  %-16s %-8s %-8s %s\n' "$project" "$b" "$variant" "$(cat "$work/$project.$b.$variant.runs")"
        fi
      done
    done
  done
fi
echo "the limit's fixup (the table: the median of the one-line rounds', each run after the"
echo "round's builds on a fresh copy of what make installed):"
for project in "${projects[@]}"; do
  printf '  %-16s %s\n' "$project" "$(cat "$work/plain-$project.fixup.runs" 2>/dev/null ||
    echo "after the plain build $(cat "$work/plain-$project.fixup.0" 2>/dev/null || echo -)")"
done
# round_ratios PROJECT BUILDER: BUILDER's one-line build over theirs in each round where both
# succeeded, one line each.
round_ratios() {
  local run
  for run in $(seq 1 "$runs"); do
    awk -v o="$(value "$1.$2.oneline.$run")" -v t="$(value "$1.theirs.oneline.$run")" \
      'BEGIN { if (o != "-" && t != "-") printf "%.2f\n", o / t }'
  done
}
if [ -n "$theirs" ]; then
  echo "theirs: nixpkgs' checkpointBuildTools flow, stock builder (full = its prepare build)"
  for project in "${projects[@]}"; do
    for b in "${builders[@]}"; do
      printf '  %-16s oneline %-8s / theirs: %s\n' "$project" "$b" \
        "$(awk -v o="$(value "$project.$b.oneline")" -v t="$(value "$project.theirs.oneline")" \
          'BEGIN { if (o == "-" || t == "-") print "-"; else printf "%.2f", o / t }')"
      # The two builds of a round ran one after the other: their ratio leaves out what drifts
      # between rounds.
      if [ "$runs" -gt 1 ]; then
        ratios=$(round_ratios "$project" "$b")
        if [ -n "$ratios" ]; then
          # shellcheck disable=SC2086 # one ratio per round
          printf '  %-16s         %-8s per round: %s (median %s)\n' "$project" "$b" \
            "$(paste -sd " " <<<"$ratios")" "$(lower_median $ratios)"
        fi
      fi
    done
    cat "$work/$project.theirs.oneline.note" 2>/dev/null || true
  done
fi
echo
echo "builder's own time, per build (from its log):"
for project in "${projects[@]}"; do
  for variant in full "${variants[@]}"; do
    for b in "${builders[@]}"; do
      printf '  %-16s %-8s %-8s %s\n' "$project" "$variant" "$b" "$(own "$project.$b.$variant")"
      grep -E 'checkpoint-builder:   (resume|import|in-place|snapshot)' "$work/$project.$b.$variant.log" 2>/dev/null |
        sed 's/^checkpoint-builder:  /      /' || true
      cat "$work/$project.$b.$variant.note" 2>/dev/null || true
    done
  done
done

# ratio A B: A / B as "N.Nx", `-` when either is unknown or B is 0.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.1fx", a / b }'
}

echo
echo "builder's own time against the bytes (seconds; MB): own = base check + restore + analysis"
echo "+ snapshot + carry; written: by its restores (the tree make reads), hashed: by its snapshots"
echo "(what the phases wrote or changed); tree: the plain build directory"
for variant in "${variants[@]}"; do
  for b in "${builders[@]}"; do
    first=""
    for project in "${projects[@]}"; do
      read -r own restore analysis snapshot carry written hashed <<<"$(own_time_fields "$work/$project.$b.$variant.log")"
      mb=$(cat "$work/plain-$project.mb" 2>/dev/null || echo -)
      printf '  %-12s %-8s %-16s own %s (restore %s, analysis %s, snapshot %s, carry %s), written %s, hashed %s, tree %s\n' \
        "$variant" "$b" "$project" "$own" "$restore" "$analysis" "$snapshot" "$carry" "$written" "$hashed" "$mb"
      if [ -z "$first" ]; then
        first="$own $restore $analysis $snapshot $written $hashed $mb"
      else
        read -r own0 restore0 analysis0 snapshot0 written0 hashed0 mb0 <<<"$first"
        printf '  %-12s %-8s %-16s own %s (restore %s, analysis %s, snapshot %s), written %s, hashed %s, tree %s\n' \
          "" "" "/ ${projects[0]}" "$(ratio "$own" "$own0")" "$(ratio "$restore" "$restore0")" \
          "$(ratio "$analysis" "$analysis0")" "$(ratio "$snapshot" "$snapshot0")" \
          "$(ratio "$written" "$written0")" "$(ratio "$hashed" "$hashed0")" "$(ratio "$mb" "$mb0")"
      fi
    done
  done
done

# The summary for bench/incremental.sh: --builder's figures (`new`), one line each.
if [ -n "$summary" ]; then
  for project in "${projects[@]}"; do
    {
      for variant in stock full oneline install oneline-tool; do
        name=$project.new.$variant
        [ "$variant" != stock ] || name=$project.stock
        echo "$project ${variant/oneline-tool/tool} $(value "$name")"
      done
      echo "$project theirs $(value "$project.theirs.oneline")"
      # shellcheck disable=SC2046 # one ratio per round
      echo "$project theirs-rounds $(lower_median $(round_ratios "$project" new))"
      for k in warm after fixup mb; do
        echo "$project ${k/mb/tree} $(cat "$work/plain-$project.$k" 2>/dev/null || echo -)"
      done
      echo "$project floor $f"
      for variant in oneline install oneline-tool; do
        read -r -a fields <<<"$(own_time_fields "$work/$project.new.$variant.log")"
        for i in "${!own_time_keys[@]}"; do
          echo "$project ${variant/oneline-tool/tool}.${own_time_keys[$i]} ${fields[$i]}"
        done
      done
    } >>"$summary"
  done
fi
