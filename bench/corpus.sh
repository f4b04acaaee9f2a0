#!/usr/bin/env bash
# Corpus benchmark: checkpoint-builder on upstream projects (tests/projects/corpus, pinned in
# sources.lock as `corpus-<name>`), on nixpkgs' real stdenv with the compiler wrapper. One
# project at a time; for each, in this order:
#
#   stock     full build, stock builder, no checkpoint
#   full      full build, checkpoint-builder with a `checkpoint` output (the base):
#             every output NAR-identical to stock's, modulo each build's own store paths
#             (bench/nar-compare.py); `checkpoint-builder verify` on the checkpoint; the
#             checkpoint's size over the build directory's (the end state restored by
#             `checkpoint-builder restore`, apparent sizes)
#   oneline   one line appended to one compile unit (tests/projects/corpus/variant.nix),
#             built from full's checkpoint (`checkpointBase`), and the same variant clean
#             with the stock builder: NAR-identical; compiler runs of each
#   header    the same for one line appended to a header
#   install   the same for a `postInstall` change
#   rename    the same for a version bump of `name` (its last character changed: output
#             paths of the same length), the source unchanged
#   longer    the same for a version bump that makes `name` one character longer (no output
#             path keeps its length)
#   chain     the header variant built from oneline's checkpoint, itself incremental (an
#             edit-build loop's next build), against header's stock clean build
#   plain     the same one-line change in a plain directory outside Nix, for the incremental
#             time to be set against: the project's stock base derivation (its inputs
#             realised, untimed) run by bash in a temporary directory with the derivation's
#             environment (every output, and every value naming one, moved under that
#             directory; the variables the sandbox sets, the build directory in it) and
#             nixpkgs' setup sourced, in a PID namespace of its own so that the compiler
#             wrapper's trace reaches the log as in the sandbox; the stdenv's phases by
#             `runPhase`: unpack, patch, configure, build (`cold`), then the oneline
#             variant's edit (its own `postPatch` snippet, in the source root), build again
#             (`warm`), then check (when doCheck) and install (`after`; fixup is not run);
#             and the Nix floor: a fresh trivial sandboxed build (a raw derivation whose
#             /bin/sh creates $out), median of three. Nothing is written into the store.
#
# Compiler runs are the compiles (`-c`/`-S`) the wrapper traces (NIX_CC_WRAPPER_TRACE) in
# buildPhase and later phases (plain: in the warm build and after); configure's probes are not
# counted. A variant whose stock output equals the stock base's is flagged (`no effect`): the
# edit did not reach the outputs (a failed check for the edits; for the renames it only says
# that the name reached no output, once each build's own paths are set aside).
# Times are the wall time of one `nix-store --realise` of the project's derivation (inputs
# realised first, untimed); every build is a fresh derivation (a salt per project and run).
#
# Results: a Markdown table on stdout (one row per project, then the summary), and under
# --out DIR (default target/corpus): results.tsv, each build's log, the output path lists,
# and for a mismatch the comparison (`<project>.<scenario>.compare`, with the normalised
# trees of the differing outputs under `<project>.<scenario>.trees/`).
#
# Usage: bench/corpus.sh [--ci] [--only plain] [--scenarios LIST] [--stdenv FILE] [--builder BIN]
#                        [--sources DIR] [--tmpdir DIR] [--out DIR] [PROJECT...]
#        bench/corpus.sh --report [--out DIR]   the table and summary of an earlier run's
#                                               results.tsv (also of an unfinished run)
#   --ci       the subset CI runs (zlib ed fmt), without the plain scenario; the exit status
#              is 1 when a build fails, a comparison differs, an edit has no effect, verify
#              fails, or an incremental build compiles as much as the clean one (oneline,
#              header) or at all (install)
#   --only plain  the plain scenario alone: its columns of each project's row are written
#              into --out's results.tsv, the other columns of an earlier run kept (so the
#              report sets them against that run's oneline times); no builder needed
#   --scenarios  the Nix scenarios after full, from `oneline header install rename longer
#              chain` (the default: all; stock and full always run; chain needs oneline and
#              header); plain runs only with oneline.
#              The report leaves out the columns of a scenario no project ran
#   --stdenv   default $CHECKPOINT_TEST_STDENV, else ../shared/realstdenv/stdenv.nix beside the repo
#   --builder  default $CHECKPOINT_BUILDER, else scripts/build-static.sh's binary
#   --sources  orig tarball cache (default: as scripts/fetch-sources.sh)
#   --tmpdir   the directory the Nix builds (TMPDIR of nix-store) and the plain builds run
#              in, e.g. a tmpfs (default: $TMPDIR, else /tmp): on an ext4 without a journal
#              a build that creates its files right after the previous build's directory
#              was deleted is slow (docs/corpus.md, openssl with the builder of 2026-12-06)
#   PROJECT    names in tests/projects/corpus (default: all, in the file's order)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
stdenv_nix=${CHECKPOINT_TEST_STDENV:-$repo/../shared/realstdenv/stdenv.nix}
builder=${CHECKPOINT_BUILDER:-}
sources=""
out_dir=$repo/target/corpus
ci=""
report_only=""
only=""
# The Nix scenarios after full, in this order (each from full's checkpoint but chain, from
# oneline's); results.tsv has six columns for each of all six, so the plain columns come
# after them all.
all_scenarios="oneline header install rename longer chain"
scenarios=$all_scenarios
projects=()
while [ $# -gt 0 ]; do
  case $1 in
    --ci) ci=1; shift ;;
    --report) report_only=1; shift ;;
    --only) only=$2; shift 2 ;;
    --scenarios) scenarios=$2; shift 2 ;;
    --stdenv) stdenv_nix=$2; shift 2 ;;
    --builder) builder=$2; shift 2 ;;
    --sources) sources=$2; shift 2 ;;
    --tmpdir) export TMPDIR=$2; shift 2 ;;
    --out) out_dir=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "corpus.sh: unknown option $1" >&2; exit 2 ;;
    *) projects+=("$1"); shift ;;
  esac
done
stdenv_nix=$(realpath "$stdenv_nix")
case $only in
  "" | plain) ;;
  *) echo "corpus.sh: --only takes plain (the Nix scenarios depend on each other)" >&2; exit 2 ;;
esac
for v in $scenarios; do
  case " $all_scenarios " in
    *" $v "*) ;;
    *) echo "corpus.sh: unknown scenario $v (--scenarios takes some of: $all_scenarios)" >&2; exit 2 ;;
  esac
done
if [[ " $scenarios " == *" chain "* ]] &&
  { [[ " $scenarios " != *" oneline "* ]] || [[ " $scenarios " != *" header "* ]]; }; then
  echo "corpus.sh: the chain scenario builds on oneline's checkpoint and header's stock build" >&2
  exit 2
fi
if [ -n "$ci" ] && [ "$scenarios" != "$all_scenarios" ]; then
  echo "corpus.sh: --ci runs every Nix scenario; not with --scenarios" >&2
  exit 2
fi
if [ -n "$ci" ] && [ -n "$only" ]; then
  echo "corpus.sh: --ci runs the Nix scenarios; not with --only" >&2
  exit 2
fi

# report TSV: the Markdown table, one row per project, and the summary.
report() {
  python3 - "$1" <<'EOF'
import csv, sys
# A column the file lacks (an older run's: no plain columns) or a scenario the run did not
# run (empty: `--only plain` into a new directory) shows as `–`; `-` is a failed build.
rows = [{k: (v if v != "" else "–") for k, v in r.items()}
        for r in csv.DictReader(open(sys.argv[1]), delimiter="\t")]
for r in rows:
    for v in ("rename", "longer", "chain"):
        for k in ("s", "stock_s", "result", "compiles", "clean_compiles", "effect"):
            r.setdefault(f"{v}_{k}", "–")
    for k in ("plain_cold_s", "plain_warm_s", "plain_after_s", "plain_compiles", "plain_cold_compiles", "floor_s"):
        r.setdefault(k, "–")
def mb(x):
    return x if x in ("-", "–") else f"{int(x) / 1048576:.1f}"
def total(*xs):
    try:
        return f"{sum(float(x) for x in xs):.2f}"
    except ValueError:
        return "–" if "–" in xs else "-"
def ratio(a, b):
    try:
        return f"{float(a) / float(b):.2f}"
    except (ValueError, ZeroDivisionError):
        return "–" if "–" in (a, b) else "-"
def res(r):
    return {"identical": "identical", "DIFFERS": "**differs**", "-": "failed"}.get(r, r)
# The scenarios some project ran (a column no row has is left out), and the plain columns
# when a row has them.
labels = {"oneline": "oneline", "header": "header", "install": "install",
          "rename": "rename (same length)", "longer": "longer name",
          "chain": "chain (header over oneline's checkpoint)"}
shown = [v for v in labels if any(r[v + "_result"] != "–" for r in rows)]
ran_plain = any(r["plain_warm_s"] != "–" for r in rows)
head = ["project", "build system", "stock s", "full s (ours/stock)", "full = stock", "verify",
        "checkpoint MB / build dir MB"]
head += [f"{labels[v]}: result, compiles inc/clean, s inc/stock" for v in shown]
if ran_plain:
    head += ["plain: warm s (build + after), compiles", "floor s", "oneline / (warm + after + floor)"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for r in rows:
    cells = [r["project"], r["system"], r["stock_s"], f'{r["full_s"]} ({ratio(r["full_s"], r["stock_s"])})',
             res(r["full_vs_stock"]), r["verify"],
             f'{mb(r["checkpoint_bytes"])} / {mb(r["builddir_bytes"])} ({ratio(r["checkpoint_bytes"], r["builddir_bytes"])})']
    for v in shown:
        note = "" if r[f"{v}_effect"] in ("changed", "–") or v in ("rename", "longer") else f' ({r[v + "_effect"]})'
        cells.append(f'{res(r[v + "_result"])}{note}, {r[v + "_compiles"]}/{r[v + "_clean_compiles"]}, '
                     f'{r[v + "_s"]}/{r[v + "_stock_s"]} ({ratio(r[v + "_s"], r[v + "_stock_s"])})')
    if ran_plain:
        warm = total(r["plain_warm_s"], r["plain_after_s"])
        cells.append(warm if warm in ("-", "–") else
                     f'{warm} ({r["plain_warm_s"]} + {r["plain_after_s"]}), {r["plain_compiles"]}')
        cells.append(r["floor_s"])
        cells.append(ratio(r["oneline_s"], total(r["plain_warm_s"], r["plain_after_s"], r["floor_s"])))
    # A cell of a scenario the run did not run is one `–`.
    cells = [c if c.strip("–()/, ") else "–" for c in cells]
    print("| " + " | ".join(cells) + " |")
print()
n = len(rows)
for key, label in (("full_vs_stock", "full build = stock"), ("oneline_result", "oneline incremental = stock clean"),
                   ("header_result", "header incremental = stock clean"), ("install_result", "install incremental = stock clean"),
                   ("rename_result", "rename (same length) incremental = stock clean"),
                   ("longer_result", "longer name incremental = stock clean"),
                   ("chain_result", "chain (header over oneline's checkpoint) incremental = stock clean")):
    ran = [r for r in rows if r[key] != "–"]
    if ran:
        print(f"- {label}: {sum(1 for r in ran if r[key] == 'identical')} of {len(ran)}")
print(f"- verify passes: {sum(1 for r in rows if r['verify'] == 'ok')} of {n}")
noeffect = [f"{r['project']} {v}" for r in rows for v in ("oneline", "header", "install") if r[v + "_effect"] == "no effect"]
print(f"- variants whose outputs equal the base's (the edit reached no output): {len(noeffect)}" + (f" ({', '.join(noeffect)})" if noeffect else ""))
unnamed = [r["project"] for r in rows if r["rename_effect"] == "no effect"]
if unnamed:
    print(f"- outputs the package name does not reach (the rename's stock output equals the base's): {', '.join(unnamed)}")
def median(values):
    v = sorted(values)
    return "-" if not v else f"{(v[len(v) // 2] + v[(len(v) - 1) // 2]) / 2:.2f}"
def num(x):
    try:
        return float(x)
    except ValueError:
        return None
for key, base, label in (("full_s", "stock_s", "full build, ours / stock"),
                         ("oneline_s", "oneline_stock_s", "oneline incremental / stock clean"),
                         ("header_s", "header_stock_s", "header incremental / stock clean"),
                         ("install_s", "install_stock_s", "install incremental / stock clean"),
                         ("rename_s", "rename_stock_s", "rename (same length) incremental / stock clean"),
                         ("longer_s", "longer_stock_s", "longer name incremental / stock clean"),
                         ("chain_s", "chain_stock_s", "chain incremental / stock clean")):
    vals = [num(r[key]) / num(r[base]) for r in rows if num(r[key]) and num(r[base])]
    if key == "full_s" or key[:-2] in shown:
        print(f"- median time, {label}: {median(vals)}")
plain = [num(r["oneline_s"]) / num(total(r["plain_warm_s"], r["plain_after_s"], r["floor_s"]))
         for r in rows if num(r["oneline_s"]) and num(total(r["plain_warm_s"], r["plain_after_s"], r["floor_s"]))]
if ran_plain:
    print(f"- median time, oneline incremental / (plain warm build + after + floor): {median(plain)} ({len(plain)} projects)")
for v in shown:
    inc = sum(int(r[v + "_compiles"]) for r in rows if r[v + "_compiles"] not in ("-", "–"))
    clean = sum(int(r[v + "_clean_compiles"]) for r in rows if r[v + "_compiles"] not in ("-", "–"))
    print(f"- compiler runs, {v}: {inc} incremental against {clean} clean, in all")
both = [r for r in rows if r["plain_compiles"] not in ("-", "–") and r["oneline_compiles"] not in ("-", "–")]
if ran_plain:
    print(f"- compiler runs, the same one-line change: {sum(int(r['oneline_compiles']) for r in both)} incremental "
          f"in Nix against {sum(int(r['plain_compiles']) for r in both)} in the plain warm builds "
          f"(build and after), in all ({len(both)} projects)")
else:
    print("- plain scenario: not run")
vals = [num(r["checkpoint_bytes"]) / num(r["builddir_bytes"]) for r in rows if num(r["checkpoint_bytes"]) and num(r["builddir_bytes"])]
print(f"- median checkpoint size / build directory size: {median(vals)}")
EOF
}

if [ -n "$report_only" ]; then
  report "$out_dir/results.tsv"
  exit 0
fi


if [ ${#projects[@]} -eq 0 ]; then
  if [ -n "$ci" ]; then
    projects=(zlib ed fmt)
  else
    mapfile -t projects < <(sed -n 's/^  \([a-z0-9-]*\) = project "[a-z0-9-]*" (\{0,1\}{$/\1/p' \
      "$repo/tests/projects/corpus/default.nix")
  fi
fi

# The pins of the projects this run builds, and no others: a corpus pin that has left the
# archive stops only a run that builds it.
fetch_out=$("$repo/scripts/fetch-sources.sh" ${sources:+--dir "$sources"} "${projects[@]/#/corpus-}")
sources=$(dirname "$(awk '$1 ~ /^corpus-/ {print $2; exit}' <<<"$fetch_out")")

if [ -z "$only" ]; then
  if [ -z "$builder" ]; then
    echo "corpus.sh: building checkpoint-builder (scripts/build-static.sh)" >&2
    builder=$("$repo/scripts/build-static.sh")
  fi
  builder=$(realpath "$builder")
fi

nix_opts=(
  --option build-users-group '' --option sandbox true
  --option extra-sandbox-paths '/bin /usr /lib /lib64 /etc/alternatives'
  --option substituters '' --cores 2 --max-jobs 1
)

mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)

tsv=$out_dir/results.tsv
work=$(mktemp -d "${TMPDIR:-/tmp}/corpus.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", b - a }'; }
# The plain scenario's and the floor's times are seconds or less: two decimals.
fine_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", b - a }'; }

# instantiate PROJECT SALT [args...]: the .drv path.
instantiate() {
  local project=$1 salt=$2
  shift 2
  nix-instantiate "$repo/tests/projects/corpus" -A "$project" \
    --arg stdenvNix "$stdenv_nix" --arg sources "$sources" \
    --argstr benchSalt "$salt" "$@" 2>"$work/eval.err" ||
    { cat "$work/eval.err" >&2; return 1; }
}

# realise_inputs NAME DRV: the derivations DRV needs, built (or found) in the store.
realise_inputs() {
  local name=$1 drv=$2 inputs
  mapfile -t inputs < <(nix-store -q --references "$drv" | grep '\.drv$' || true)
  if [ ${#inputs[@]} -gt 0 ]; then
    nix-store --realise "${nix_opts[@]}" "${inputs[@]}" >/dev/null 2>"$work/inputs.err" ||
      { cat "$work/inputs.err" >&2; echo inputs-failed >"$out_dir/$name.status"; return 1; }
  fi
}

# realise NAME DRV: inputs untimed, then DRV timed; $out_dir/NAME.{log,out,secs,status}.
realise() {
  local name=$1 drv=$2 t0 t1 status=0
  realise_inputs "$name" "$drv" || return 0
  echo "corpus.sh: $name: $drv" >&2
  t0=$(now)
  nix-store --realise "${nix_opts[@]}" "$drv" >"$out_dir/$name.out" 2>"$out_dir/$name.log" ||
    status=$?
  t1=$(now)
  secs "$t0" "$t1" >"$out_dir/$name.secs"
  if [ "$status" = 0 ]; then echo ok >"$out_dir/$name.status"; else echo "failed($status)" >"$out_dir/$name.status"; fi
}

ok() { [ "$(cat "$out_dir/$1.status" 2>/dev/null)" = ok ]; }
time_of() { if ok "$1"; then cat "$out_dir/$1.secs"; else echo -; fi; }
checkpoint_of() { grep -- '-checkpoint$' "$out_dir/$1.out" | head -n 1; }

# compiles NAME: compiler runs traced in buildPhase and the phases after it.
compiles() {
  ok "$1" || { echo -; return; }
  awk '/Running phase: / { counting = ($NF != "unpackPhase" && $NF != "patchPhase" && $NF != "configurePhase") }
       /^cc-wrapper-trace: compile / && counting { n++ }
       END { print n + 0 }' "$out_dir/$1.log"
}

# compare NAME A B: NAR comparison of builds A and B; prints `identical`, `DIFFERS` or `-`.
compare() {
  local name=$1 a=$2 b=$3
  if ! ok "$a" || ! ok "$b"; then echo -; return; fi
  rm -rf "$out_dir/$name.trees"
  if python3 "$repo/bench/nar-compare.py" --keep "$out_dir/$name.trees" \
    "$out_dir/$a.out" "$out_dir/$b.out" >"$out_dir/$name.compare" 2>&1; then
    echo identical
  else
    echo DIFFERS
  fi
}

# size NAME: checkpoint bytes / build directory bytes (end state), and verify's verdict.
checkpoint_facts() {
  local name=$1 ckpt last dir ck_bytes bd_bytes verify=FAILS
  ok "$name" || { echo "- - -"; return; }
  ckpt=$(checkpoint_of "$name")
  if "$builder" verify "$ckpt" >"$out_dir/$name.verify" 2>&1; then verify=ok; fi
  last=$("$builder" inspect "$ckpt" 2>&1 | awk '$1 ~ /^[0-9]+$/ { p = $2 } END { print p }')
  dir=$work/restore-$name
  rm -rf "$dir"
  if "$builder" restore --after "$last" "$ckpt" "$dir" >/dev/null 2>"$out_dir/$name.restore"; then
    bd_bytes=$(du -sb --apparent-size "$dir/build" | cut -f1)
  else
    bd_bytes=-
  fi
  chmod -R u+w "$dir" 2>/dev/null || true
  rm -rf "$dir"
  ck_bytes=$(du -sb --apparent-size "$ckpt" | cut -f1)
  echo "$verify $ck_bytes $bd_bytes"
}

# The plain scenario's build, run by bash as PID 1 of a PID namespace of its own (the
# wrapper writes its trace to /proc/1/fd/2, the builder's stderr in the sandbox) with
# exactly the environment `plain` prepares; $1 is the directory holding edit.sh and
# receiving the time stamps. The phases are the stdenv's own, each run by its `runPhase`
# in one shell as genericBuild runs them; the stamps are taken between phases.
cat >"$work/plain-phases.sh" <<'PHASES'
dir=$1
stamp() { date +%s.%N >"$dir/$1"; }
cd "$NIX_BUILD_TOP"
source "$stdenv/setup"
# genericBuild sets this before the phases (setup.sh's gzip wrapper, when there is one).
export GZIP_NO_TIMESTAMPS=1
# Only the stdenv's standard phase list is run here; a derivation that changes it is not
# measured rather than measured wrongly.
for v in phases prePhases preConfigurePhases preBuildPhases preInstallPhases buildCommand buildCommandPath; do
  if [ -n "${!v:-}" ]; then
    echo "corpus.sh plain: the derivation sets $v; the plain scenario runs the standard phases only" >&2
    exit 1
  fi
done
runPhase unpackPhase
root=$PWD
runPhase patchPhase
runPhase configurePhase
echo "corpus.sh plain: cold build" >&2
stamp cold.start
runPhase buildPhase
stamp cold.end
# The oneline variant's edit, in the source root as its postPatch runs (a configurePhase
# may have left the shell in a build directory).
echo "corpus.sh plain: the oneline edit, then the warm build" >&2
(cd "$root" && bash -e "$dir/edit.sh")
stamp warm.start
runPhase buildPhase
stamp warm.end
echo "corpus.sh plain: after the build" >&2
runPhase checkPhase
runPhase installPhase
stamp after.end
PHASES

# plain PROJECT SALT: the plain scenario (see the top of this file) in $work/plain-PROJECT;
# $out_dir/PROJECT.plain.{log,status}, and .secs files for cold, warm and after.
plain() {
  local p=$1 salt=$2 name=$1.plain drv dir status=0
  rm -f "$out_dir/$name".*
  drv=$(instantiate "$p" "$salt-plain") || { echo eval-failed >"$out_dir/$name.status"; return 0; }
  realise_inputs "$name" "$drv" || return 0
  dir=$work/plain-$p
  mkdir -p "$dir/build"
  # The derivation's environment, NUL-separated: every output moved to $dir/outputs/NAME
  # (and every value naming an output's path, such as a PREFIX= in makeFlags, changed
  # alike), then the variables Nix's sandbox sets, with the build directory in $dir and
  # HOME a directory nothing creates.
  nix --extra-experimental-features nix-command show-derivation "$drv" |
    python3 -c '
import json, sys
d = next(iter(json.load(sys.stdin).values()))
top, cores = sys.argv[1], sys.argv[2]
outs = {name: o["path"] for name, o in d["outputs"].items()}
env = {}
for k, v in d["env"].items():
    for name, path in outs.items():
        v = v.replace(path, f"{top}/outputs/{name}")
    env[k] = v
env.update({"NIX_BUILD_TOP": f"{top}/build", "TMPDIR": f"{top}/build", "TEMPDIR": f"{top}/build",
            "TMP": f"{top}/build", "TEMP": f"{top}/build", "HOME": f"{top}/homeless-shelter",
            "PATH": "/path-not-set", "NIX_STORE": "/nix/store", "NIX_BUILD_CORES": cores,
            "NIX_LOG_FD": "2", "TERM": "xterm-256color"})
sys.stdout.write("".join(f"{k}={v}\0" for k, v in env.items()))
' "$dir" 2 >"$dir/env" || { echo env-failed >"$out_dir/$name.status"; return 0; }
  # The oneline variant's own edit (tests/projects/corpus/variant.nix's postPatch snippet).
  nix-instantiate --eval --strict --json -E "
    let c = (import $repo/tests/projects/corpus { stdenvNix = $stdenv_nix; sources = $sources; }).$p.corpus;
    in (import $repo/tests/projects/corpus/variant.nix {
      variant = \"oneline\"; inherit (c) file header name; }).postPatch" 2>"$work/eval.err" |
    python3 -c 'import json, sys; print(json.load(sys.stdin))' >"$dir/edit.sh" ||
    { cat "$work/eval.err" >&2; echo eval-failed >"$out_dir/$name.status"; return 0; }
  echo "corpus.sh: $name: $drv in $dir" >&2
  local vars
  mapfile -d '' vars <"$dir/env"
  # The log through a pipe, as Nix reads a build's: the wrapper opens /proc/1/fd/2 anew,
  # which would truncate a file.
  set +e
  env -i "${vars[@]}" "$(command -v unshare)" --pid --fork --mount-proc \
    /bin/bash -e "$work/plain-phases.sh" "$dir" 2>&1 | cat >"$out_dir/$name.log"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" = 0 ]; then
    echo ok >"$out_dir/$name.status"
    fine_secs "$(cat "$dir/cold.start")" "$(cat "$dir/cold.end")" >"$out_dir/$name.cold.secs"
    fine_secs "$(cat "$dir/warm.start")" "$(cat "$dir/warm.end")" >"$out_dir/$name.warm.secs"
    fine_secs "$(cat "$dir/warm.end")" "$(cat "$dir/after.end")" >"$out_dir/$name.after.secs"
  else
    echo "failed($status)" >"$out_dir/$name.status"
  fi
  chmod -R u+w "$dir" 2>/dev/null || true
  rm -rf "$dir"
}

# plain_compiles NAME STAGE: compiler runs the wrapper traced in the plain build's cold build
# (`cold`) or in its warm build and after (`warm`).
plain_compiles() {
  ok "$1" || { echo -; return; }
  awk -v stage="$2" '/^corpus.sh plain: cold build/ { s = "cold" }
       /^corpus.sh plain: the oneline edit/ { s = "warm" }
       /^cc-wrapper-trace: compile / && s == stage { n++ }
       END { print n + 0 }' "$out_dir/$1.log"
}
plain_time() { if ok "$1"; then cat "$out_dir/$1.$2.secs"; else echo -; fi; }

# floor PROJECT: the Nix floor, median of three fresh trivial sandboxed builds (as
# bench/reuse.sh measures it), in $out_dir/PROJECT.floor.secs.
floor() {
  local i drv t0 t1 values=()
  for i in 1 2 3; do
    drv=$(nix-instantiate --expr "derivation {
      name = \"corpus-floor\";
      system = builtins.currentSystem;
      builder = \"/bin/sh\";
      args = [ \"-c\" \"echo > \$out\" ];
      benchSalt = \"$(date +%s%N)-$$-$RANDOM\";
    }" 2>/dev/null) || { echo - >"$out_dir/$1.floor.secs"; return 0; }
    t0=$(now)
    nix-store --realise "${nix_opts[@]}" "$drv" >/dev/null 2>&1 ||
      { echo - >"$out_dir/$1.floor.secs"; return 0; }
    t1=$(now)
    values+=("$(fine_secs "$t0" "$t1")")
  done
  printf '%s\n' "${values[@]}" | sort -n | sed -n 2p >"$out_dir/$1.floor.secs"
}

mb() { case $1 in -) echo - ;; *) awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }' ;; esac; }
ratio() { case "$1$2" in *-*) echo - ;; *) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' ;; esac; }

failures=0
fail() { failures=$((failures + 1)); echo "corpus.sh: FAIL: $*" >&2; }

# results.tsv: one row per project; the plain columns last (CI's check below reads the
# others by position).
columns=(project system stock_s full_s full_vs_stock verify checkpoint_bytes builddir_bytes clean_compiles)
for v in $all_scenarios; do
  columns+=("${v}_s" "${v}_stock_s" "${v}_result" "${v}_compiles" "${v}_clean_compiles" "${v}_effect")
done
columns+=(plain_cold_s plain_warm_s plain_after_s plain_cold_compiles plain_compiles floor_s)

# put_row COLUMN=VALUE...: the project's row set in results.tsv: added, or, when the file
# has it (an earlier run's, with --only plain), the given columns replaced and the others
# kept; the file is written again with every column (a column it lacked left empty).
put_row() {
  python3 - "$tsv" "${columns[*]}" "$@" <<'PY'
import csv, os, sys
path, columns, new = sys.argv[1], sys.argv[2].split(), dict(a.split("=", 1) for a in sys.argv[3:])
rows = []
if os.path.exists(path) and os.path.getsize(path) > 0:
    rows = list(csv.DictReader(open(path), delimiter="\t"))
for r in rows:
    if r["project"] == new["project"]:
        r.update(new)
        break
else:
    rows.append(new)
with open(path, "w") as f:
    f.write("\t".join(columns) + "\n")
    for r in rows:
        f.write("\t".join(r.get(c) or "" for c in columns) + "\n")
PY
}

# A run of the Nix scenarios starts results.tsv afresh; --only plain adds to it.
[ -n "$only" ] || (IFS=$'\t'; echo "${columns[*]}") >"$tsv"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for project in "${projects[@]}"; do
  salt="corpus-$(date +%s%N)-$$-$RANDOM"
  system=$(nix-instantiate --eval --strict --json "$repo/tests/projects/corpus" -A "$project.corpus.system" \
    --arg stdenvNix "$stdenv_nix" --arg sources "$sources" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin))')
  p=$project
  fields=("project=$p" "system=$system")
  if [ -z "$only" ]; then
    realise "$p.stock" "$(instantiate "$p" "$salt-stock")"
    realise "$p.full" "$(instantiate "$p" "$salt" --arg builder "$builder" --arg checkpoint true)"
    full_cmp=$(compare "$p.full" "$p.stock" "$p.full")
    read -r verify ck_bytes bd_bytes < <(checkpoint_facts "$p.full")
    row=("$p" "$system" "$(time_of "$p.stock")" "$(time_of "$p.full")" "$full_cmp" "$verify" "$ck_bytes" "$bd_bytes" "$(compiles "$p.full")")
    [ "$full_cmp" = identical ] || fail "$p: full build vs stock: $full_cmp"
    [ "$verify" = ok ] || fail "$p: verify: $verify"
    for v in $all_scenarios; do
      if [[ " $scenarios " != *" $v "* ]]; then
        row+=("" "" "" "" "" "")
        continue
      fi
      inc=- stock=- result=- effect=-
      # chain: the header variant over oneline's checkpoint, against header's stock build.
      base=$p.full variant=$v clean=$p.$v.stock
      [ "$v" != chain ] || base=$p.oneline variant=header clean=$p.header.stock
      if ok "$base"; then
        realise "$p.$v" "$(instantiate "$p" "$salt" --arg builder "$builder" --arg checkpoint true \
          --argstr variant "$variant" --argstr base "$(checkpoint_of "$base")")"
        [ "$v" = chain ] || realise "$clean" "$(instantiate "$p" "$salt-stock" --argstr variant "$v")"
        result=$(compare "$p.$v" "$clean" "$p.$v")
        case $(compare "$p.$v.effect" "$p.stock" "$clean") in
          identical) effect="no effect" ;;
          DIFFERS) effect=changed ;;
        esac
        rm -rf "$out_dir/$p.$v.effect.trees"
      fi
      row+=("$(time_of "$p.$v")" "$(time_of "$clean")" "$result" "$(compiles "$p.$v")" "$(compiles "$clean")" "$effect")
      [ "$result" = identical ] || fail "$p $v: incremental vs stock clean: $result"
      case $v in
        rename | longer) ;;
        *) [ "$effect" = changed ] || fail "$p $v: the variant's outputs vs the base's: $effect" ;;
      esac
    done
    for i in "${!row[@]}"; do fields+=("${columns[$i]}=${row[$i]}"); done
  fi
  # The plain scenario (not in CI's run: it would make CI slower, and it checks nothing
  # CI needs).
  if [ -z "$ci" ] && [[ " $scenarios " == *" oneline "* ]]; then
    plain "$p" "$salt"
    floor "$p"
    fields+=("plain_cold_s=$(plain_time "$p.plain" cold)" "plain_warm_s=$(plain_time "$p.plain" warm)"
      "plain_after_s=$(plain_time "$p.plain" after)" "plain_cold_compiles=$(plain_compiles "$p.plain" cold)"
      "plain_compiles=$(plain_compiles "$p.plain" warm)" "floor_s=$(cat "$out_dir/$p.floor.secs")")
    if ! ok "$p.plain"; then
      fail "$p plain: $(cat "$out_dir/$p.plain.status" 2>/dev/null || echo missing) (log: $out_dir/$p.plain.log)"
    elif [ "$(plain_compiles "$p.plain" cold)" = 0 ]; then
      fail "$p plain: the compiler wrapper traced no compile in the cold build"
    fi
  fi
  put_row "${fields[@]}"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The report, from results.tsv.
echo "## Corpus run $(date -u +%Y-%m-%dT%H:%MZ) ($(nproc) cores; load $load_before before, $load_after after)"
echo
echo "stdenv: \`$stdenv_nix\`${builder:+, builder: \`$builder\`}${only:+ (--only $only)}"
echo
report "$tsv"

if [ "$failures" -gt 0 ]; then
  echo "corpus.sh: $failures check(s) failed; logs and comparisons in $out_dir" >&2
  [ -z "$ci" ] || exit 1
fi
if [ -n "$ci" ]; then
  # Incremental builds must compile less than clean ones, and an install-only change nothing.
  bad=$(awk -F'\t' 'NR > 1 && ($13 == "-" || $13 + 0 >= $14 + 0 || $19 == "-" || $19 + 0 >= $20 + 0 || $25 != "0") { print $1 }' "$tsv")
  if [ -n "$bad" ]; then
    echo "corpus.sh: FAIL: incremental builds compiled as much as clean ones (or an install-only change compiled): $bad" >&2
    exit 1
  fi
fi
