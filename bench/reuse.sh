#!/usr/bin/env bash
# Reuse benchmark: what a checkpoint saves on the real projects, in one run.
# For each project (default: lua zstd hello), in this order (but for `theirs`, said
# below):
#
#   stock    full build, stock builder (bash + genericBuild), no checkpoint
#   full     full build, checkpoint-builder with a `checkpoint` output: the base
#   oneline  the `oneline` variant (tests/projects/variant.nix: one line of one
#            C file changed by postPatch) with checkpointBase = full's
#            checkpoint: configure restored, make resumed over the old tree
#   install  the `install` variant (postInstall only) with the same base:
#            unpack … build restored, install and fixup run
#   header   the `header` variant (one line of one header changed) with the
#            same base: configure restored, make resumed; hello's automake
#            records no header dependencies, so there the builder itself makes
#            what includes the header newer than its object
#   make     the limit outside Nix: the same tarball unpacked into a temporary
#            directory, configured and built with the derivation's own make
#            invocation (`make -j2 SHELL=/bin/bash makeFlags buildFlags`,
#            hello: `./configure --disable-dependency-tracking --prefix=…`
#            and its CFLAGS/LDFLAGS first), then the variant's postPatch (the
#            same sed) applied and `make` timed again (a warm make); then
#            what the Nix build runs after buildPhase, timed as `after`:
#            `make check` when the derivation sets doCheck (hello), and
#            `make install` with its installFlags; then the stdenv's
#            fixupPhase over what was installed, timed as `fixup` (every Nix
#            build runs it over the outputs the change rewrote: strip and the
#            other hooks, on big programs most of the build after make). A
#            project that writes its
#            own phases (zstd-cmake: CMake and ninja) gets them run instead,
#            in bash with `out` set and runHook a no-op: configurePhase
#            (untimed), buildPhase (cold, then warm), installPhase (after).
#            All of it runs in `nix-shell --pure` of the stock derivation, so
#            with the toolchain every Nix build of the project has (the
#            stdenv's compiler wrapper and its NIX_CFLAGS_COMPILE and
#            NIX_LDFLAGS), as a developer's warm build in nix-shell would.
#            The same steps with the host's tools as the benchmark runs (no
#            wrapper) are timed too, in a tree of their own, and shown in a
#            second table
#   theirs   nixpkgs' checkpointBuildTools flow on the same project, stock builder
#            (tests/projects/checkpoint-build-tools.nix; needs rsync on the host):
#            its prepare build (untimed here; built right after `full`), then the
#            `oneline` variant through it, timed, built right after our `oneline`
#            build; --no-theirs skips both. On pixman-meson it fails: the
#            build directory it copies back installs into the prefix Meson
#            recorded for the prepare build (its own store path), as it would in
#            nixpkgs
#   floor    a fresh trivial sandboxed build: `nix-store --realise` of a new
#            raw derivation whose builder (/bin/sh) only creates $out; the
#            least any Nix build costs (median of three)
#
# and prints a table and the ratios the reuse issue targets:
#   oneline / (warm make + floor)  <= 1.2
#   install / stock                <= 0.1  (the target is set for zstd)
# and header / stock (no target: what a header change costs against a full build);
# and oneline / (warm make + after + floor), which also counts the check and
# install steps any rebuild in Nix runs after buildPhase; oneline / (warm + after +
# fixup + floor), which counts the fixup too; and oneline / theirs
# (issue 19: below 1 on every project); then, per build of ours, the builder's
# own time as its log reports it (base check, restore, analysis, snapshot,
# carry, and the phases' own time).
#
# Every Nix build is a fresh derivation: one `benchSalt` per project and run,
# shared by full, oneline and install (the salt is part of the layer keys, so
# builds that reuse each other's checkpoint must share it); stock and floor get
# salts of their own.  Inputs (stdenv, tarball, builder, base checkpoint) are
# realised before the clock starts; a time is the wall time of one
# `nix-store --realise` of the project's derivation (sandbox set-up included,
# evaluation excluded).  The oneline and install builds are checked on the way
# (objects compiled, phases restored, the changed program's output) and the
# builder's per-phase table of the last oneline build is shown, with a
# timeline of the full, oneline and install builds (seconds from the start of
# nix-store --realise to each `Running phase:` line, to the builder's closing
# table, and to the end: what is not a phase is restore, snapshots, sandbox
# set-up and Nix registering the outputs); `out` equality
# with a clean build is what tests/real_reuse.rs asserts, not this script.
#
# Usage: bench/reuse.sh [--stdenv FILE] [--builder BIN] [--sources DIR] [--tmpdir DIR]
#                       [--out-dir DIR] [--runs N] [--log-lines N] [--no-theirs]
#                       [--summary FILE] [PROJECT...]
#   --stdenv   the stdenv.nix to build on (default: tests/stdenv/stdenv.nix)
#   --builder  checkpoint-builder binary (default: $CHECKPOINT_BUILDER, else
#              the output of scripts/build-static.sh)
#   --sources  orig tarball cache (default: as scripts/fetch-sources.sh)
#   --tmpdir   the directory Nix and the plain builds build in (TMPDIR; default
#              $TMPDIR, else /tmp), e.g. a tmpfs: on an ext4 without a journal
#              (this machine's) creating files soon after many were deleted is
#              slow, and every restore and unpack creates files
#   --out-dir  where the plain builds install and fixupPhase runs (their
#              prefix; default /tmp when it is on the filesystem of /nix/store,
#              else the work directory): a Nix build writes its outputs into
#              the store
#   --runs     repetitions of the whole sequence per project (default 1);
#              with more than one, a median row per project
#   --log-lines  lines of the last oneline build's log shown (default 24)
#   --summary  also write each project's figures as `PROJECT KEY VALUE` lines
#              (bench/incremental.sh reads them): the medians over the runs of
#              stock, full, oneline, install, header, theirs (its one-line
#              build), theirs-rounds (of the per-run ratios against it), the
#              limit's warm, after, fixup and floor, tree (the plain build
#              directory after the warm build, MB), and oneline.FIELD for the
#              fields of lib.sh's own_time_fields in the one-line builds
#   PROJECT    among hello, lua, zstd, zstd-cmake, pixman-meson
#              (default: lua zstd hello)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
stdenv_nix=$repo/tests/stdenv/stdenv.nix
builder=${CHECKPOINT_BUILDER:-}
sources=""
runs=1
log_lines=24
theirs=1
out_root=""
summary=""
projects=()
while [ $# -gt 0 ]; do
  case $1 in
    --stdenv) stdenv_nix=$2; shift 2 ;;
    --builder) builder=$2; shift 2 ;;
    --sources) sources=$2; shift 2 ;;
    --tmpdir) export TMPDIR=$2; shift 2 ;;
    --out-dir) out_root=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --log-lines) log_lines=$2; shift 2 ;;
    --no-theirs) theirs=""; shift ;;
    --summary) summary=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "reuse.sh: unknown option $1" >&2; exit 2 ;;
    *) projects+=("$1"); shift ;;
  esac
done
[ ${#projects[@]} -gt 0 ] || projects=(lua zstd hello)
[ -z "$summary" ] || summary=$(realpath -m "$summary")
stdenv_nix=$(realpath "$stdenv_nix")

cores=2

sources=$(project_sources "$sources" "${projects[@]}")

if [ -z "$builder" ]; then
  echo "reuse.sh: building checkpoint-builder (scripts/build-static.sh)" >&2
  builder=$("$repo/scripts/build-static.sh")
fi
builder=$(realpath "$builder")

work=$(mktemp -d "${TMPDIR:-/tmp}/reuse-bench.XXXXXX")
out_root=$(limit_outputs_root "$out_root" "$work")
outs=$(mktemp -d "$out_root/reuse-bench-outputs.XXXXXX")
cleanup() {
  chmod -R u+w "$work" "$outs" 2>/dev/null || true
  rm -rf "$work" "$outs"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", b - a }'; }

# instantiate PROJECT SALT [nix-instantiate args...]: prints the .drv path.
instantiate() {
  local project=$1 salt=$2
  shift 2
  nix-instantiate "$repo/tests/projects" -A "$project" \
    --arg stdenvNix "$stdenv_nix" --arg sources "$sources" \
    --argstr benchSalt "$salt" "$@" 2>"$work/eval.err" ||
    { cat "$work/eval.err" >&2; return 1; }
}

# realise NAME DRV: realises the inputs of DRV untimed, then DRV timed; writes
# $work/NAME.{secs,out,log,status}.
realise() {
  local name=$1 drv=$2 inputs t0 t1 status=0
  mapfile -t inputs < <(nix-store -q --references "$drv" | grep '\.drv$' || true)
  if [ ${#inputs[@]} -gt 0 ]; then
    nix-store --realise "${nix_opts[@]}" "${inputs[@]}" >/dev/null 2>"$work/inputs.err" ||
      { cat "$work/inputs.err" >&2; echo inputs-failed >"$work/$name.status"; return 0; }
  fi
  echo "reuse.sh: $name: $drv" >&2
  # The log is timestamped as it arrives (for the timeline printed at the end).
  t0=$(now)
  set +e
  nix-store --realise "${nix_opts[@]}" "$drv" 2>&1 >"$work/$name.out" |
    perl -MTime::HiRes=time -ne 'printf "%.3f %s", time, $_' >"$work/$name.tlog"
  status=${PIPESTATUS[0]}
  set -e
  t1=$(now)
  secs "$t0" "$t1" >"$work/$name.secs"
  echo "$t0" >"$work/$name.t0"
  cut -d' ' -f2- "$work/$name.tlog" >"$work/$name.log"
  if [ "$status" = 0 ]; then echo ok >"$work/$name.status"; else echo "failed($status)" >"$work/$name.status"; fi
}

ok() { [ "$(cat "$work/$1.status" 2>/dev/null)" = ok ]; }
out_of() { grep -v -- '-checkpoint$' "$work/$1.out" | head -n 1; }
checkpoint_of() { grep -- '-checkpoint$' "$work/$1.out" | head -n 1; }

# attrs PROJECT PREFIX: the variant's attributes the plain build needs, as
# shell assignments (the project file evaluated with mkDrv = identity, the
# output placeholder replaced by PREFIX).
attrs() {
  nix-instantiate --eval --strict --json -E "
    let
      a = import $repo/tests/projects/$1.nix {
        mkDrv = x: x; sources = /. + \"$sources\"; variant = \"oneline\"; };
      fix = builtins.replaceStrings [ (builtins.placeholder \"out\") ] [ \"$2\" ];
    in {
      src = toString a.src;
      postPatch = a.postPatch;
      configure = !(a.dontConfigure or false);
      flags = map fix ((a.makeFlags or [ ]) ++ (a.buildFlags or [ ]));
      checkFlags = if a.doCheck or false then map fix (a.makeFlags or [ ]) else null;
      installFlags = map fix ((a.makeFlags or [ ]) ++ (a.installFlags or [ ]));
      CFLAGS = a.CFLAGS or null;
      LDFLAGS = a.LDFLAGS or null;
      phases = map (p: a.\${p} or \"\") [ \"configurePhase\" \"buildPhase\" \"installPhase\" ];
    }" | python3 -c '
import json, shlex, sys
a = json.load(sys.stdin)
print("src=" + shlex.quote(a["src"]))
print("post_patch=" + shlex.quote(a["postPatch"]))
print("configure=" + ("1" if a["configure"] else ""))
for v in ("flags", "installFlags"):
    print(v.lower() + "=(" + " ".join(shlex.quote(f) for f in a[v]) + ")")
print("check=" + ("1" if a["checkFlags"] is not None else ""))
print("checkflags=(" + " ".join(shlex.quote(f) for f in a["checkFlags"] or []) + ")")
for v in ("CFLAGS", "LDFLAGS"):
    print(v.lower() + "=" + shlex.quote(a[v] if a[v] is not None else ""))
for name, code in zip(("configure_phase", "build_phase", "install_phase"), a["phases"]):
    print(name + "=" + shlex.quote(code))
'
}

# plain_phases: plain_steps' limit for a project with its own phases: they run
# in bash as the stdenv would run them, in the unpacked source root, with `out`
# the temporary prefix and runHook doing nothing.
plain_phases() {
  local stdenv_run_hook
  stdenv_run_hook=$(declare -f runHook)
  export out=$prefix NIX_BUILD_CORES=$cores
  runHook() { :; }
  eval "$configure_phase" >"$log.configure.log" 2>&1 || return 1
  t0=$(now)
  eval "$build_phase" >"$log.cold.log" 2>&1 || return 1
  t1=$(now)
  secs "$t0" "$t1" >"$log.cold.secs"
  (cd "$root" && bash -euo pipefail -c "$post_patch") || return 1
  t0=$(now)
  eval "$build_phase" >"$log.warm.log" 2>&1 || return 1
  t1=$(now)
  secs "$t0" "$t1" >"$log.warm.secs"
  t0=$(now)
  eval "$install_phase" >"$log.install.log" 2>&1 || return 1
  t1=$(now)
  secs "$t0" "$t1" >"$log.after.secs"
  # The fixup runs the stdenv's hooks.
  eval "$stdenv_run_hook"
  stdenv_fixup "$dir" "$log.fixup.log" "$log.fixup.secs" "$prefix"
}

# plain_steps: plain()'s builds, in the unpacked source root (variables of
# plain()); every step checks, and a time is written only when its step
# succeeded.
plain_steps() {
  local t0 t1 cfg
  cd "$root" || return 1
  if [ -n "$build_phase" ]; then
    plain_phases
    return
  fi
  [ -z "$cflags" ] || export CFLAGS=$cflags
  [ -z "$ldflags" ] || export LDFLAGS=$ldflags
  if [ -n "$configure" ] && [ -x ./configure ]; then
    cfg=(--prefix="$prefix")
    ! grep -q dependency-tracking ./configure || cfg=(--disable-dependency-tracking "${cfg[@]}")
    ! grep -q enable-static ./configure || cfg=(--disable-static "${cfg[@]}")
    ./configure "${cfg[@]}" >"$log.configure.log" 2>&1 || return 1
  fi
  t0=$(now)
  make -j"$cores" SHELL=/bin/bash "${flags[@]}" >"$log.cold.log" 2>&1 || return 1
  t1=$(now)
  secs "$t0" "$t1" >"$log.cold.secs"
  bash -euo pipefail -c "$post_patch" || return 1
  t0=$(now)
  make -j"$cores" SHELL=/bin/bash "${flags[@]}" >"$log.warm.log" 2>&1 || return 1
  t1=$(now)
  secs "$t0" "$t1" >"$log.warm.secs"
  # What the Nix build runs after buildPhase (fixup aside): make check when
  # the derivation sets doCheck, make install.
  t0=$(now)
  if [ -n "$check" ]; then
    make SHELL=/bin/bash "${checkflags[@]}" VERBOSE=y check >"$log.check.log" 2>&1 || return 1
  fi
  make SHELL=/bin/bash "${installflags[@]}" install >"$log.install.log" 2>&1 || return 1
  t1=$(now)
  secs "$t0" "$t1" >"$log.after.secs"
  stdenv_fixup "$dir" "$log.fixup.log" "$log.fixup.secs" "$prefix"
}

# plain PROJECT RUN MODE [DRV]: the warm-make limit in a temporary directory.
# MODE env: inside `nix-shell DRV --pure` (DRV: the project's stock derivation),
# so the builds run with the toolchain and variables the Nix build has (the
# stdenv's compiler wrapper, NIX_CFLAGS_COMPILE, NIX_LDFLAGS); files
# plain-PROJECT-RUN.*. MODE bare: the host's tools as the benchmark runs,
# without the wrapper; files bare-PROJECT-RUN.*.
plain() {
  local project=$1 run=$2 mode=$3 drv=${4:-} dir log script src post_patch configure flags
  local installflags check checkflags cflags ldflags configure_phase build_phase install_phase root prefix
  case $mode in
    env) log=$work/plain-$project-$run ;;
    bare) log=$work/bare-$project-$run ;;
  esac
  dir=$log.d
  prefix=$outs/$(basename "$log")/out
  mkdir -p "$dir"
  eval "$(attrs "$project" "$prefix")"
  tar -xf "$src" -C "$dir"
  root=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  if [ "$mode" = bare ]; then
    (plain_steps) || echo "reuse.sh: the plain build of $project ($mode) failed" >&2
    return 0
  fi
  script=$log.sh
  {
    declare -p project run dir prefix log root src post_patch configure flags installflags \
      check checkflags cflags ldflags configure_phase build_phase install_phase cores
    declare -f now secs plain_steps plain_phases stdenv_fixup
  } >"$script"
  # nix-shell puts its shell's directory first on PATH: a directory of its own
  # holding only bash keeps /bin (and the host's gcc in it) behind the stdenv's.
  mkdir -p "$work/shell"
  ln -sf /bin/bash "$work/shell/bash"
  NIX_BUILD_SHELL=$work/shell/bash nix-shell "$drv" --pure \
    --run "source $(printf '%q' "$script"); plain_steps" >"$log.shell.log" 2>&1 ||
    { echo "reuse.sh: the plain build of $project ($mode) failed" >&2; tail -n 20 "$log.shell.log" >&2; }
  du -sm "$root" | cut -f1 >"$log.mb"
  return 0
}

# floor PROJECT RUN: median of three fresh trivial sandboxed builds.
floor() {
  local project=$1 run=$2 i drv t0 t1 values=()
  for i in 1 2 3; do
    drv=$(nix-instantiate --expr "derivation {
      name = \"reuse-bench-floor\";
      system = builtins.currentSystem;
      builder = \"/bin/sh\";
      args = [ \"-c\" \"echo > \$out\" ];
      benchSalt = \"$(date +%s%N)-$$-$RANDOM\";
    }" 2>/dev/null)
    t0=$(now)
    nix-store --realise "${nix_opts[@]}" "$drv" >/dev/null 2>&1
    t1=$(now)
    values+=("$(secs "$t0" "$t1")")
  done
  printf '%s\n' "${values[@]}" | sort -n | sed -n 2p >"$work/floor-$project-$run.secs"
}

# Objects compiled in a build log: compiler lines of hello/lua, `CC …o` and
# `AS …o` lines of zstd's quiet Makefile, compile commands `ninja -v` prints.
objects() {
  grep -E -- '( -c .*\.o |^(CC|AS) .*\.o$|^\[[0-9]+/[0-9]+\] .* -c )' "$1" || true
}

# timeline NAME: seconds from the start of nix-store --realise to each phase
# the build ran, to the builder's closing table, and to the end.
timeline() {
  awk -v t0="$(cat "$work/$1.t0")" -v end="$(cat "$work/$1.secs")" '
    / Running phase: / { printf "%s@%.2f ", $4, $1 - t0 }
    / checkpoint-builder: step / && !table { table = 1; printf "table@%.2f ", $1 - t0 }
    END { printf "end@%s\n", end }' "$work/$1.tlog"
}

# visible NAME: whether the output of build NAME shows the one-line change: the program
# prints it, or (pixman-meson, a library) the library holds the changed message.
# Sets `program` and `args` (variables of check) for its message.
visible() {
  case $project in
    hello) program=bin/hello args=--version ;;
    lua) program=bin/lua args=-v ;;
    zstd | zstd-cmake*) program=bin/zstd args=--version ;;
    pixman-meson)
      program=lib/libpixman-1.so args="(its bytes)"
      grep -qa 'one-line change' "$(out_of "$1")/$program"
      return
      ;;
  esac
  "$(out_of "$1")/$program" "$args" 2>&1 | grep -q 'one-line change'
}

# check PROJECT RUN: notes on the oneline and install builds of one run.
check() {
  local project=$1 run=$2 n program="" args=""
  local o=$project.oneline.$run i=$project.install.$run h=$project.header.$run
  local t=$project.theirs.$run
  if ok "$o"; then
    n=$(objects "$work/$o.log" | wc -l)
    echo "$n object(s): $(objects "$work/$o.log" | sed 's/.* -o \([^ ]*\).*/\1/; s/^[A-Z]* //' | tr '\n' ' ')" >"$work/$o.note"
    if grep -q '^Running phase: configurePhase' "$work/$o.log"; then
      echo "configurePhase RAN" >>"$work/$o.note"
    fi
    visible "$o" || echo "the change is NOT visible in $program $args" >>"$work/$o.note"
  fi
  if ok "$t"; then
    echo "$(objects "$work/$t.log" | wc -l) object(s)" >"$work/$t.note"
    visible "$t" || echo "the change is NOT visible in $program $args" >>"$work/$t.note"
  fi
  if ok "$h"; then
    n=$(objects "$work/$h.log" | wc -l)
    echo "$n object(s)" >"$work/$h.note"
    if grep -q '^Running phase: configurePhase' "$work/$h.log"; then
      echo "configurePhase RAN" >>"$work/$h.note"
    fi
  fi
  if ok "$i"; then
    if grep -q '^Running phase: buildPhase' "$work/$i.log"; then
      echo "buildPhase RAN" >"$work/$i.note"
    else
      echo "unpack..build restored" >"$work/$i.note"
    fi
  fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for project in "${projects[@]}"; do
  for run in $(seq 1 "$runs"); do
    salt="reuse-bench-$(date +%s%N)-$$-$RANDOM"
    stock_drv=$(instantiate "$project" "$salt-stock")
    realise "$project.stock.$run" "$stock_drv"
    realise "$project.full.$run" "$(instantiate "$project" "$salt" \
      --arg builder "$builder" --arg checkpoint true)"
    if [ -n "$theirs" ]; then
      realise "$project.prepare.$run" "$(instantiate "$project" "$salt-theirs" --argstr theirs prepare)"
    fi
    # Our one-line build and theirs one after the other, so that the machine's drift over
    # the minutes of a run falls on neither.
    for variant in oneline theirs install header; do
      if [ "$variant" = theirs ]; then
        if [ -n "$theirs" ] && ok "$project.prepare.$run"; then
          realise "$project.theirs.$run" "$(instantiate "$project" "$salt-theirs" \
            --argstr theirs "$(out_of "$project.prepare.$run")" --argstr variant oneline)"
        fi
      elif ok "$project.full.$run"; then
        realise "$project.$variant.$run" "$(instantiate "$project" "$salt" \
          --arg builder "$builder" --arg checkpoint true \
          --argstr variant "$variant" --argstr base "$(checkpoint_of "$project.full.$run")")"
      fi
    done
    plain "$project" "$run" env "$stock_drv"
    plain "$project" "$run" bare
    floor "$project" "$run"
    check "$project" "$run"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# value NAME: seconds of a successful build, else `-`.
value() { if ok "$1"; then cat "$work/$1.secs"; else echo -; fi; }
file_value() { cat "$work/$1" 2>/dev/null || echo -; }
ratio() {
  case "$1$2" in
    *-*) echo - ;;
    *) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a / b }' ;;
  esac
}
sum() {
  case "$1$2" in
    *-*) echo - ;;
    *) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a + b }' ;;
  esac
}
median() {
  local values=()
  mapfile -t values < <(printf '%s\n' "$@" | grep -v '^-$' || true)
  [ ${#values[@]} -gt 0 ] || { echo -; return; }
  printf '%s\n' "${values[@]}" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "== Reuse: incremental and install-only rebuilds ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, runs=$runs)"
echo "stdenv:  $stdenv_nix"
echo "builder: $builder"
echo "builds in: ${TMPDIR:-/tmp}; the limit installs into $(on_store_filesystem "$out_root")"
echo "load:    $load_before (before), $load_after (after)"
echo "seconds: wall time of nix-store --realise (stock, full, oneline, install, header, floor), of make"
echo "         outside Nix in nix-shell of the stock derivation (cold: the first make, configure"
echo "         excluded; warm: make after the one-line change; after: make check (hello) and"
echo "         make install after it)"
printf '%-6s %4s %7s %7s %7s %7s %7s %7s %6s %6s %6s %6s | %8s %10s %8s %8s %8s %8s\n' \
  project run stock full oneline install header theirs cold warm after floor \
  "ol/(w+f)" "ol/(w+a+f)" inst/stk hdr/stk full/stk ol/thr
# rows FILL PRINT KEYS...: for each project, a row per run (FILL PROJECT RUN sets col[KEY]
# for each of KEYS, PRINT PROJECT RUN prints the row from col) and, with more than one run,
# a median row (each key's median over the runs).
rows() {
  local fill=$1 print=$2 project run k
  shift 2
  for project in "${projects[@]}"; do
    declare -A col=()
    for run in $(seq 1 "$runs") median; do
      if [ "$run" = median ]; then
        [ "$runs" -gt 1 ] || continue
        for k in "$@"; do
          # shellcheck disable=SC2086
          col[$k]=$(median ${col[$k.all]})
        done
      else
        "$fill" "$project" "$run"
        for k in "$@"; do
          col[$k.all]="${col[$k.all]:-} ${col[$k]}"
        done
      fi
      "$print" "$project" "$run"
    done
    unset col
  done
}

# limit_ratios: the oneline build of col against the limit in col, as two words:
# oneline / (warm + floor) and oneline / (warm + after + floor).
limit_ratios() {
  echo "$(ratio "${col[oneline]}" "$(sum "${col[warm]}" "${col[floor]}")")" \
    "$(ratio "${col[oneline]}" "$(sum "$(sum "${col[warm]}" "${col[after]}")" "${col[floor]}")")"
}

# limit_fill TREE PROJECT RUN: sets col's oneline build and the limit timed in TREE (`plain`:
# in nix-shell, `bare`: with the host's tools): warm, after, floor.
limit_fill() {
  local tree=$1 project=$2 run=$3
  col[oneline]=$(value "$project.oneline.$run")
  col[warm]=$(file_value "$tree-$project-$run.warm.secs")
  col[after]=$(file_value "$tree-$project-$run.after.secs")
  col[fixup]=$(file_value "$tree-$project-$run.fixup.secs")
  col[floor]=$(file_value "floor-$project-$run.secs")
}

# The main table: our builds, theirs, the limit in nix-shell.
main_fill() {
  local project=$1 run=$2
  limit_fill plain "$project" "$run"
  col[stock]=$(value "$project.stock.$run")
  col[full]=$(value "$project.full.$run")
  col[install]=$(value "$project.install.$run")
  col[header]=$(value "$project.header.$run")
  col[theirs]=$(value "$project.theirs.$run")
  col[cold]=$(file_value "plain-$project-$run.cold.secs")
}
main_print() {
  # shellcheck disable=SC2046 # limit_ratios prints two words
  printf '%-6s %4s %7s %7s %7s %7s %7s %7s %6s %6s %6s %6s | %8s %10s %8s %8s %8s %8s\n' "$1" "$2" \
    "${col[stock]}" "${col[full]}" "${col[oneline]}" "${col[install]}" "${col[header]}" "${col[theirs]}" \
    "${col[cold]}" "${col[warm]}" "${col[after]}" "${col[floor]}" \
    $(limit_ratios) \
    "$(ratio "${col[install]}" "${col[stock]}")" \
    "$(ratio "${col[header]}" "${col[stock]}")" \
    "$(ratio "${col[full]}" "${col[stock]}")" \
    "$(ratio "${col[oneline]}" "${col[theirs]}")"
}
rows main_fill main_print stock full oneline install header theirs cold warm after floor

# The limit with the host's tools.
bare_fill() { limit_fill bare "$@"; }
bare_print() {
  # shellcheck disable=SC2046 # limit_ratios prints two words
  printf '%-6s %4s %6s %6s %6s | %8s %10s\n' "$1" "$2" \
    "${col[warm]}" "${col[after]}" "${col[floor]}" $(limit_ratios)
}
echo
echo "the same limit with the host's tools as the benchmark runs (no compiler wrapper,"
echo "none of the stdenv's variables), against the same oneline builds:"
printf '%-6s %4s %6s %6s %6s | %8s %10s\n' project run warm after floor "ol/(w+f)" "ol/(w+a+f)"
rows bare_fill bare_print oneline warm after floor

# The limit with the stdenv's fixup over the installed files counted in (nix-shell).
fixup_print() {
  printf '%-6s %4s %6s %6s %6s %6s | %12s\n' "$1" "$2" \
    "${col[warm]}" "${col[after]}" "${col[fixup]}" "${col[floor]}" \
    "$(ratio "${col[oneline]}" "$(sum "$(sum "$(sum "${col[warm]}" "${col[after]}")" "${col[fixup]}")" "${col[floor]}")")"
}
echo
echo "the limit in nix-shell with the stdenv's fixupPhase over what make installed (fixup),"
echo "which every Nix build runs after installPhase over the outputs the change rewrote:"
printf '%-6s %4s %6s %6s %6s %6s | %12s\n' project run warm after fixup floor "ol/(w+a+x+f)"
rows main_fill fixup_print oneline warm after fixup floor
echo
echo "targets: ol/(w+f) = oneline / (warm make + floor) <= 1.2; inst/stk = install / stock <= 0.1 (zstd)"
echo "ol/(w+a+f) counts what the Nix build also runs after buildPhase (check, install)"
echo "theirs: the oneline change through nixpkgs' checkpointBuildTools flow (stock builder);"
echo "        ol/thr = oneline / theirs (issue 19: below 1)"

echo
for project in "${projects[@]}"; do
  for run in $(seq 1 "$runs"); do
    for kind in stock full oneline install header ${theirs:+prepare theirs}; do
      status=$(cat "$work/$project.$kind.$run.status" 2>/dev/null || echo missing)
      if [ "$status" != ok ]; then
        echo "== $project $kind (run $run): $status"
        tail -n 30 "$work/$project.$kind.$run.log" 2>/dev/null || true
      fi
    done
    for kind in oneline install header theirs; do
      [ ! -f "$work/$project.$kind.$run.note" ] ||
        echo "$project $kind (run $run): $(tr '\n' ';' <"$work/$project.$kind.$run.note")"
    done
    for kind in full oneline install header; do
      ! ok "$project.$kind.$run" ||
        echo "$project $kind (run $run) timeline, s: $(timeline "$project.$kind.$run")"
    done
    for kind in full oneline install header; do
      ok "$project.$kind.$run" || continue
      own=$(grep -a '^checkpoint-builder: own time: ' "$work/$project.$kind.$run.log" |
        tail -n 1 | sed 's/^checkpoint-builder: own time: //')
      [ -z "$own" ] || echo "$project $kind (run $run) builder's own time: $own"
    done
    echo "$project warm make (run $run): $(objects "$work/plain-$project-$run.warm.log" | wc -l) object(s)"
  done
done
for project in "${projects[@]}"; do
  if ok "$project.oneline.$runs" && [ "$log_lines" -gt 0 ]; then
    echo
    echo "== $project oneline (run $runs): last $log_lines log lines"
    grep -v "you did not specify .--add-root." "$work/$project.oneline.$runs.log" | tail -n "$log_lines"
  fi
done

# The summary for bench/incremental.sh: the main table's medians (rows' median row, or the
# one run's row) and a few figures more, one line each.
summary_fill() {
  local project=$1 run=$2 i fields=(- - - - - - -)
  main_fill "$project" "$run"
  col[theirs-rounds]=$(ratio "${col[oneline]}" "${col[theirs]}")
  col[tree]=$(file_value "plain-$project-$run.mb")
  ! ok "$project.oneline.$run" ||
    read -r -a fields <<<"$(own_time_fields "$work/$project.oneline.$run.log")"
  for i in "${!own_time_keys[@]}"; do col[oneline.${own_time_keys[$i]}]=${fields[$i]}; done
}
summary_keys=(stock full oneline install header theirs theirs-rounds warm after fixup floor tree
  "${own_time_keys[@]/#/oneline.}")
summary_print() {
  [ "$2" = median ] || [ "$runs" = 1 ] || return 0
  local k
  for k in "${summary_keys[@]}"; do echo "$1 $k ${col[$k]}"; done >>"$summary"
}
[ -z "$summary" ] || rows summary_fill summary_print "${summary_keys[@]}"
