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
#
# Compiler runs are the compiles (`-c`/`-S`) the wrapper traces (NIX_CC_WRAPPER_TRACE) in
# buildPhase and later phases; configure's probes are not counted. A variant whose stock
# output equals the stock base's is flagged (`no effect`): the edit did not reach the outputs.
# Times are the wall time of one `nix-store --realise` of the project's derivation (inputs
# realised first, untimed); every build is a fresh derivation (a salt per project and run).
#
# Results: a Markdown table on stdout (one row per project, then the summary), and under
# --out DIR (default target/corpus): results.tsv, each build's log, the output path lists,
# and for a mismatch the comparison (`<project>.<scenario>.compare`, with the normalised
# trees of the differing outputs under `<project>.<scenario>.trees/`).
#
# Usage: bench/corpus.sh [--ci] [--stdenv FILE] [--builder BIN] [--sources DIR] [--out DIR]
#                        [PROJECT...]
#        bench/corpus.sh --report [--out DIR]   the table and summary of an earlier run's
#                                               results.tsv (also of an unfinished run)
#   --ci       the subset CI runs (zlib ed fmt); the exit status is 1 when a build fails,
#              a comparison differs, a variant has no effect, verify fails, or an
#              incremental build compiles as much as the clean one (oneline, header) or at
#              all (install)
#   --stdenv   default $CHECKPOINT_TEST_STDENV, else ../shared/realstdenv/stdenv.nix beside the repo
#   --builder  default $CHECKPOINT_BUILDER, else scripts/build-static.sh's binary
#   --sources  orig tarball cache (default: as scripts/fetch-sources.sh)
#   PROJECT    names in tests/projects/corpus (default: all, in the file's order)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
stdenv_nix=${CHECKPOINT_TEST_STDENV:-$repo/../shared/realstdenv/stdenv.nix}
builder=${CHECKPOINT_BUILDER:-}
sources=""
out_dir=$repo/target/corpus
ci=""
report_only=""
projects=()
while [ $# -gt 0 ]; do
  case $1 in
    --ci) ci=1; shift ;;
    --report) report_only=1; shift ;;
    --stdenv) stdenv_nix=$2; shift 2 ;;
    --builder) builder=$2; shift 2 ;;
    --sources) sources=$2; shift 2 ;;
    --out) out_dir=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "corpus.sh: unknown option $1" >&2; exit 2 ;;
    *) projects+=("$1"); shift ;;
  esac
done
stdenv_nix=$(realpath "$stdenv_nix")

# report TSV: the Markdown table, one row per project, and the summary.
report() {
  python3 - "$1" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def mb(x):
    return "-" if x == "-" else f"{int(x) / 1048576:.1f}"
def ratio(a, b):
    try:
        return f"{float(a) / float(b):.2f}"
    except (ValueError, ZeroDivisionError):
        return "-"
def res(r):
    return {"identical": "identical", "DIFFERS": "**differs**", "-": "failed"}.get(r, r)
print("| project | build system | stock s | full s (ours/stock) | full = stock | verify | checkpoint MB / build dir MB | "
      "oneline: result, compiles inc/clean, s inc/stock | header: result, compiles inc/clean, s inc/stock | "
      "install: result, compiles inc/clean, s inc/stock |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    cells = [r["project"], r["system"], r["stock_s"], f'{r["full_s"]} ({ratio(r["full_s"], r["stock_s"])})',
             res(r["full_vs_stock"]), r["verify"],
             f'{mb(r["checkpoint_bytes"])} / {mb(r["builddir_bytes"])} ({ratio(r["checkpoint_bytes"], r["builddir_bytes"])})']
    for v in ("oneline", "header", "install"):
        note = "" if r[f"{v}_effect"] == "changed" else f' ({r[v + "_effect"]})'
        cells.append(f'{res(r[v + "_result"])}{note}, {r[v + "_compiles"]}/{r[v + "_clean_compiles"]}, '
                     f'{r[v + "_s"]}/{r[v + "_stock_s"]} ({ratio(r[v + "_s"], r[v + "_stock_s"])})')
    print("| " + " | ".join(cells) + " |")
print()
n = len(rows)
for key, label in (("full_vs_stock", "full build = stock"), ("oneline_result", "oneline incremental = stock clean"),
                   ("header_result", "header incremental = stock clean"), ("install_result", "install incremental = stock clean")):
    print(f"- {label}: {sum(1 for r in rows if r[key] == 'identical')} of {n}")
print(f"- verify passes: {sum(1 for r in rows if r['verify'] == 'ok')} of {n}")
noeffect = [f"{r['project']} {v}" for r in rows for v in ("oneline", "header", "install") if r[v + "_effect"] == "no effect"]
print(f"- variants whose outputs equal the base's (the edit reached no output): {len(noeffect)}" + (f" ({', '.join(noeffect)})" if noeffect else ""))
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
                         ("install_s", "install_stock_s", "install incremental / stock clean")):
    vals = [num(r[key]) / num(r[base]) for r in rows if num(r[key]) and num(r[base])]
    print(f"- median time, {label}: {median(vals)}")
for v in ("oneline", "header", "install"):
    inc = sum(int(r[v + "_compiles"]) for r in rows if r[v + "_compiles"] != "-")
    clean = sum(int(r[v + "_clean_compiles"]) for r in rows if r[v + "_compiles"] != "-")
    print(f"- compiler runs, {v}: {inc} incremental against {clean} clean, in all")
vals = [num(r["checkpoint_bytes"]) / num(r["builddir_bytes"]) for r in rows if num(r["checkpoint_bytes"]) and num(r["builddir_bytes"])]
print(f"- median checkpoint size / build directory size: {median(vals)}")
EOF
}

if [ -n "$report_only" ]; then
  report "$out_dir/results.tsv"
  exit 0
fi


fetch_out=$("$repo/scripts/fetch-sources.sh" ${sources:+"$sources"})
sources=$(dirname "$(awk '$1 ~ /^corpus-/ {print $2; exit}' <<<"$fetch_out")")

if [ ${#projects[@]} -eq 0 ]; then
  if [ -n "$ci" ]; then
    projects=(zlib ed fmt)
  else
    mapfile -t projects < <(sed -n 's/^  \([a-z0-9-]*\) = project "[a-z0-9-]*" (\{0,1\}{$/\1/p' \
      "$repo/tests/projects/corpus/default.nix")
  fi
fi

if [ -z "$builder" ]; then
  echo "corpus.sh: building checkpoint-builder (scripts/build-static.sh)" >&2
  builder=$("$repo/scripts/build-static.sh")
fi
builder=$(realpath "$builder")

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

# instantiate PROJECT SALT [args...]: the .drv path.
instantiate() {
  local project=$1 salt=$2
  shift 2
  nix-instantiate "$repo/tests/projects/corpus" -A "$project" \
    --arg stdenvNix "$stdenv_nix" --arg sources "$sources" \
    --argstr benchSalt "$salt" "$@" 2>"$work/eval.err" ||
    { cat "$work/eval.err" >&2; return 1; }
}

# realise NAME DRV: inputs untimed, then DRV timed; $out_dir/NAME.{log,out,secs,status}.
realise() {
  local name=$1 drv=$2 inputs t0 t1 status=0
  mapfile -t inputs < <(nix-store -q --references "$drv" | grep '\.drv$' || true)
  if [ ${#inputs[@]} -gt 0 ]; then
    nix-store --realise "${nix_opts[@]}" "${inputs[@]}" >/dev/null 2>"$work/inputs.err" ||
      { cat "$work/inputs.err" >&2; echo inputs-failed >"$out_dir/$name.status"; return 0; }
  fi
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

mb() { case $1 in -) echo - ;; *) awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }' ;; esac; }
ratio() { case "$1$2" in *-*) echo - ;; *) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' ;; esac; }

failures=0
fail() { failures=$((failures + 1)); echo "corpus.sh: FAIL: $*" >&2; }

printf 'project\tsystem\tstock_s\tfull_s\tfull_vs_stock\tverify\tcheckpoint_bytes\tbuilddir_bytes\tclean_compiles' >"$tsv"
for v in oneline header install; do
  printf '\t%s_s\t%s_stock_s\t%s_result\t%s_compiles\t%s_clean_compiles\t%s_effect' "$v" "$v" "$v" "$v" "$v" "$v" >>"$tsv"
done
echo >>"$tsv"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for project in "${projects[@]}"; do
  salt="corpus-$(date +%s%N)-$$-$RANDOM"
  system=$(nix-instantiate --eval --strict --json "$repo/tests/projects/corpus" -A "$project.corpus.system" \
    --arg stdenvNix "$stdenv_nix" --arg sources "$sources" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin))')
  p=$project
  realise "$p.stock" "$(instantiate "$p" "$salt-stock")"
  realise "$p.full" "$(instantiate "$p" "$salt" --arg builder "$builder" --arg checkpoint true)"
  full_cmp=$(compare "$p.full" "$p.stock" "$p.full")
  read -r verify ck_bytes bd_bytes < <(checkpoint_facts "$p.full")
  row=("$p" "$system" "$(time_of "$p.stock")" "$(time_of "$p.full")" "$full_cmp" "$verify" "$ck_bytes" "$bd_bytes" "$(compiles "$p.full")")
  [ "$full_cmp" = identical ] || fail "$p: full build vs stock: $full_cmp"
  [ "$verify" = ok ] || fail "$p: verify: $verify"
  for v in oneline header install; do
    inc=- stock=- result=- effect=-
    if ok "$p.full"; then
      realise "$p.$v" "$(instantiate "$p" "$salt" --arg builder "$builder" --arg checkpoint true \
        --argstr variant "$v" --argstr base "$(checkpoint_of "$p.full")")"
      realise "$p.$v.stock" "$(instantiate "$p" "$salt-stock" --argstr variant "$v")"
      result=$(compare "$p.$v" "$p.$v.stock" "$p.$v")
      case $(compare "$p.$v.effect" "$p.stock" "$p.$v.stock") in
        identical) effect="no effect" ;;
        DIFFERS) effect=changed ;;
      esac
      rm -rf "$out_dir/$p.$v.effect.trees"
    fi
    row+=("$(time_of "$p.$v")" "$(time_of "$p.$v.stock")" "$result" "$(compiles "$p.$v")" "$(compiles "$p.$v.stock")" "$effect")
    [ "$result" = identical ] || fail "$p $v: incremental vs stock clean: $result"
    [ "$effect" = changed ] || fail "$p $v: the variant's outputs vs the base's: $effect"
  done
  (IFS=$'\t'; echo "${row[*]}") >>"$tsv"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# The report, from results.tsv.
echo "## Corpus run $(date -u +%Y-%m-%dT%H:%MZ) ($(nproc) cores; load $load_before before, $load_after after)"
echo
echo "stdenv: \`$stdenv_nix\`, builder: \`$builder\`"
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
