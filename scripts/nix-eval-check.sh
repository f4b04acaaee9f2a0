#!/usr/bin/env bash
# Offline proof of the Nix side (flake, overlay, adapter, CI lib, VM tests), with no
# nixpkgs and no KVM: everything is evaluated against the stub in tests/nix-eval/.
#
#   1. every .nix file in the repository parses;
#   2. every tests/nix-eval/cases/<name>.nix evaluates to its <name>.expected.json (and
#      every expected file has its case);
#   3. the errors the API promises come with their messages;
#   4. derivations are really instantiated and read back from the store: the builder,
#      args, outputs and checkpointBase of adapted, checkpointed and CI builds; a base the
#      store cannot provide fails instantiation;
#   5. the cases evaluate the same inside a flake (pure evaluation, sources in the store).
#
# Usage: scripts/nix-eval-check.sh [--update]   (--update rewrites the expected files)
# Environment: NIX_EVAL_CHECK_STORE  root of a throwaway chroot store to use instead of
#                                    the system's (the flake's nix-eval check sets it).
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
repo=$PWD

update=false
case ${1-} in
  --update) update=true ;;
  "") ;;
  *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

for tool in nix nix-instantiate nix-store; do
  if ! command -v "$tool" >/dev/null; then
    echo "nix-eval-check: $tool is required" >&2
    exit 1
  fi
done

nix_opts=(--option substituters "")
if [[ -n ${NIX_EVAL_CHECK_STORE-} ]]; then
  mkdir -p "$NIX_EVAL_CHECK_STORE"
  nix_opts+=(--store "local?root=$NIX_EVAL_CHECK_STORE")
fi
if [[ $(id -u) == 0 ]]; then
  nix_opts+=(--option build-users-group "")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() {
  echo "ok: $*"
}

# eval_json FILE|-E EXPR [more nix-instantiate args]: strict JSON of the value.
eval_json() {
  nix-instantiate "${nix_opts[@]}" --readonly-mode --eval --strict --json "$@"
}
# pretty FILE: FILE's JSON indented, keys sorted (tests/nix-eval/pretty-json.nix).
pretty() {
  nix "${nix_opts[@]}" --extra-experimental-features nix-command eval --impure --raw \
    --expr "import $repo/tests/nix-eval/pretty-json.nix (/. + \"$1\")"
}
# same_json A B: whether the two JSON files hold the same value.
same_json() {
  [[ $(nix-instantiate "${nix_opts[@]}" --readonly-mode --eval --expr \
    "builtins.fromJSON (builtins.readFile (/. + \"$1\")) == builtins.fromJSON (builtins.readFile (/. + \"$2\"))") == true ]]
}

echo "== 1. parse every .nix file"
parsed=0
while IFS= read -r -d '' file; do
  if nix-instantiate "${nix_opts[@]}" --parse "$file" >/dev/null 2>"$work/parse.err"; then
    parsed=$((parsed + 1))
  else
    fail "$file does not parse: $(cat "$work/parse.err")"
  fi
done < <(find . \( -path ./target -o -path ./.git \) -prune -o -name '*.nix' -print0)
if [[ $parsed == 0 ]]; then
  fail "no .nix file found"
else
  pass "$parsed files parse"
fi

echo "== 2. evaluation cases against their expected JSON"
cases=tests/nix-eval/cases
# check_case FILE RESULT-JSON LABEL
check_case() {
  local file=$1 actual=$2 label=$3
  local expected=${file%.nix}.expected.json
  if $update; then
    pretty "$actual" >"$expected"
    pass "$label: wrote $expected"
  elif [[ ! -f $expected ]]; then
    fail "$label: $expected is missing (run $0 --update and review it)"
  elif same_json "$repo/$expected" "$actual"; then
    pass "$label"
  else
    fail "$label differs from $expected:"
    pretty "$actual" >"$work/actual.pretty.json"
    diff -u "$expected" "$work/actual.pretty.json" >&2 || true
  fi
}
for file in "$cases"/*.nix; do
  if eval_json "$file" >"$work/actual.json" 2>"$work/eval.err"; then
    check_case "$file" "$work/actual.json" "$file"
  else
    fail "$file does not evaluate: $(cat "$work/eval.err")"
  fi
done
for expected in "$cases"/*.expected.json; do
  [[ -f ${expected%.expected.json}.nix ]] || fail "$expected has no case ${expected%.expected.json}.nix"
done

echo "== 3. error messages"
harness=$repo/tests/nix-eval/harness.nix
# expect_error LABEL MESSAGE EXPR: EXPR (with `h` the harness, `pkgs` its package set)
# must fail to evaluate, saying MESSAGE.
expect_error() {
  local label=$1 message=$2 expr=$3
  if eval_json -E "let h = import $harness; pkgs = h.pkgs; in $expr" >/dev/null 2>"$work/err"; then
    fail "$label: evaluated, expected an error saying: $message"
  elif grep -qF -- "$message" "$work/err"; then
    pass "$label"
  else
    fail "$label: expected an error saying '$message', got: $(cat "$work/err")"
  fi
}
expect_error "withCheckpoint refuses a custom builder script" \
  "withCheckpoint: cannot give t a checkpoint: it has a custom builder script" \
  '(pkgs.withCheckpoint (pkgs.stdenv.mkDerivation { name = "t"; builder = ./tests/nix-eval/custom-builder.sh; }) null).drvPath'
expect_error "withCheckpoint refuses a fixed-output derivation" \
  "it is a fixed-output derivation" \
  '(pkgs.withCheckpoint (pkgs.stdenv.mkDerivation { name = "t"; outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="; }) null).drvPath'
expect_error "withCheckpoint refuses what mkDerivation did not make" \
  "withCheckpoint: x has no overrideAttrs" \
  'pkgs.withCheckpoint { name = "x"; } null'
expect_error "mkCheckpointBuild needs a checkpoint" \
  "mkCheckpointBuild: the checkpoint is null" \
  '(pkgs.mkCheckpointBuild pkgs.hello null).drvPath'
expect_error "a checkpoint that is not a store path" \
  "'/tmp/checkpoint' is not a store path" \
  '(pkgs.withCheckpoint pkgs.hello "/tmp/checkpoint").drvPath'
expect_error "a derivation without a checkpoint output" \
  "given as a checkpoint has no \`checkpoint\` output" \
  '(pkgs.withCheckpoint pkgs.hello pkgs.cargo).drvPath'
expect_error "a base file with two paths" \
  "must hold one store path or \`null\`, found 2 lines" \
  'pkgs.readCheckpointBase ./tests/nix-eval/base-files/two-paths'
expect_error "a base file that names no store path" \
  "'/tmp/not-in-the-store' is not a store path" \
  'pkgs.readCheckpointBase ./tests/nix-eval/base-files/not-a-store-path'

echo "== 4. derivations in the store"
# Read back from the .drv files themselves (ATerm, stable across Nix versions) and with
# `nix-store --query`, rather than from `nix derivation show`, whose JSON keeps changing.
physical() { echo "${NIX_EVAL_CHECK_STORE-}$1"; }
# binding DRV NAME: the environment variable NAME of DRV (fails when it has none).
binding() {
  nix-store "${nix_opts[@]}" --query --binding "$2" "$1" 2>/dev/null
}
# builder_and_args DRV: `"<builder>",[<args>]` as written in the .drv.
builder_and_args() {
  grep -o '"x86_64-linux","[^"]*",\[[^]]*\]' "$(physical "$1")" | cut -d, -f2-
}
# instantiate EXPR: the .drv path (EXPR sees `h`, the harness, and `pkgs`).
instantiate() {
  nix-instantiate "${nix_opts[@]}" --no-gc-warning \
    -E "let h = import $harness; pkgs = h.pkgs; in $1" 2>"$work/inst.err" | tail -n 1
}
# expect LABEL COMMAND...: COMMAND must succeed.
expect() {
  local label=$1
  shift
  if "$@"; then pass "$label"; else fail "$label (failed: $*)"; fi
}
stock_args() {
  builder_and_args "$1" |
    grep -Eq '^"/nix/store/[^"]*/bin/checkpoint-builder",\["-e","/nix/store/[^"]*-source-stdenv\.sh","/nix/store/[^"]*-default-builder\.sh"\]$'
}
custom_builder_args() {
  builder_and_args "$1" |
    grep -Eq '^"/nix/store/[^"]*/bin/checkpoint-builder",\["-e","/nix/store/[^"]*-source-stdenv\.sh","/nix/store/[^"]*-custom-builder\.sh"\]$'
}
has_input_src() { input_srcs "$1" | grep -qF "\"$2\""; }
has_reference() { nix-store "${nix_opts[@]}" --query --references "$1" | grep -qxF "$2"; }
no_binding() { ! binding "$1" "$2" >/dev/null; }
equals() { [[ $1 == "$2" ]]; }
aterm_has() { grep -qF -- "$2" "$(physical "$1")"; }
# input_srcs DRV: the .drv's list of input sources (the last list before the system).
input_srcs() { grep -o '\[[^][]*\],"x86_64-linux"' "$(physical "$1")"; }

# A real store path to name as the base (nix-store --add of a small directory).
mkdir -p "$work/base/fake-checkpoint"
echo "not a real checkpoint" >"$work/base/fake-checkpoint/manifest"
base_path=$(nix-store "${nix_opts[@]}" --add "$work/base/fake-checkpoint")
echo "$base_path" >"$work/base-file"
echo "null" >"$work/null-file"

if drv=$(instantiate 'h.swapped.hello') && [[ -n $drv ]]; then
  expect "swapped stdenv: hello runs on checkpoint-builder with the stock args" stock_args "$drv"
  expect "swapped stdenv: outputs out, then checkpoint" equals "$(binding "$drv" outputs)" "out checkpoint"
  expect "swapped stdenv: checkpointBash is the stdenv's shell" \
    equals "$(binding "$drv" checkpointBash)" "/stub/bash/bin/bash"
  expect "swapped stdenv: no checkpointBase" no_binding "$drv" checkpointBase
else
  fail "cannot instantiate h.swapped.hello: $(cat "$work/inst.err")"
fi

if drv=$(instantiate '(pkgs.withCheckpoints pkgs.stdenv).mkDerivation { name = "custom"; builder = ./tests/nix-eval/custom-builder.sh; }') && [[ -n $drv ]]; then
  expect "custom builder script: still the last arg, after the stock source-stdenv.sh" \
    custom_builder_args "$drv"
  expect "custom builder script: no checkpoint output" equals "$(binding "$drv" outputs)" "out"
else
  fail "cannot instantiate a custom-builder derivation: $(cat "$work/inst.err")"
fi

if drv=$(instantiate 'pkgs.mkCheckpointBuild (pkgs.hello.overrideAttrs { postPatch = "true"; }) (pkgs.prepareCheckpointBuild pkgs.hello)') && [[ -n $drv ]]; then
  prepared=$(instantiate 'pkgs.prepareCheckpointBuild pkgs.hello')
  expect "mkCheckpointBuild: stock args" stock_args "$drv"
  expect "mkCheckpointBuild: the earlier build's checkpoint output is an input" \
    aterm_has "$drv" "(\"$prepared\",[\"checkpoint\"])"
  expect "mkCheckpointBuild: checkpointBase is that output's path" \
    equals "$(binding "$drv" checkpointBase)" "$(nix-store "${nix_opts[@]}" --query --binding checkpoint "$prepared")"
  expect "mkCheckpointBuild: outputs out, then checkpoint" equals "$(binding "$drv" outputs)" "out checkpoint"
else
  fail "cannot instantiate mkCheckpointBuild: $(cat "$work/inst.err")"
fi

if drv=$(instantiate "pkgs.ciBuild { drv = pkgs.hello; baseFile = /. + \"$work/base-file\"; }") && [[ -n $drv ]]; then
  expect "ciBuild with a store path: stock args" stock_args "$drv"
  expect "ciBuild with a store path: checkpointBase is that path" equals "$(binding "$drv" checkpointBase)" "$base_path"
  expect "ciBuild with a store path: it is an input source of the .drv" \
    has_input_src "$drv" "$base_path"
  expect "ciBuild with a store path: the .drv references it" has_reference "$drv" "$base_path"
  expect "ciBuild with a store path: outputs out, then checkpoint" equals "$(binding "$drv" outputs)" "out checkpoint"
else
  fail "cannot instantiate ciBuild with a base: $(cat "$work/inst.err")"
fi

if drv=$(instantiate "pkgs.ciBuild { drv = pkgs.hello; baseFile = /. + \"$work/null-file\"; }") && [[ -n $drv ]]; then
  expect "ciBuild with null: stock args" stock_args "$drv"
  expect "ciBuild with null: no checkpointBase" no_binding "$drv" checkpointBase
  expect "ciBuild with null: still a checkpoint output" equals "$(binding "$drv" outputs)" "out checkpoint"
else
  fail "cannot instantiate ciBuild with null: $(cat "$work/inst.err")"
fi

# A base that is neither in the store nor substitutable (no substituters here).
gone=/nix/store/0123456789abcdfghijklmnpqrsvwxyz-gone-checkpoint
echo "$gone" >"$work/gone-file"
if drv=$(instantiate "pkgs.ciBuild { drv = pkgs.hello; baseFile = /. + \"$work/gone-file\"; }") && [[ -n $drv ]]; then
  fail "ciBuild with a base the store cannot provide instantiated: $drv"
elif grep -qF "'$gone' does not exist" "$work/inst.err"; then
  pass "ciBuild with a base the store cannot provide: instantiation fails, naming the path"
else
  fail "ciBuild with a missing base: unexpected error: $(cat "$work/inst.err")"
fi

echo "== 5. pure evaluation, as a flake"
# A flake with no inputs around a copy of the repository: its outputs are the cases.
flake=$work/flake
mkdir -p "$flake/repo"
tar -C "$repo" --exclude=./target --exclude=./.git -cf - . | tar -C "$flake/repo" -xf -
# The base files name a made-up store path, fine for nix-instantiate --eval (read-only),
# but outside read-only mode Nix makes a path valid (substitutes it) as soon as it
# becomes a string's context: name a real path with the same name instead.
fake=/nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello-2.12.1-checkpoint
mkdir -p "$work/real/hello-2.12.1-checkpoint"
echo "stands for a checkpoint" >"$work/real/hello-2.12.1-checkpoint/manifest"
real=$(nix-store "${nix_opts[@]}" --add "$work/real/hello-2.12.1-checkpoint")
sed -i "s|$fake|$real|" "$flake/repo/tests/nix-eval/base-files/"*
cat >"$flake/flake.nix" <<'NIX'
{
  outputs = { self }: {
    cases = builtins.mapAttrs (name: _: import (./repo/tests/nix-eval/cases + "/${name}")) (
      builtins.readDir ./repo/tests/nix-eval/cases
    );
  };
}
NIX
for file in "$cases"/*.nix; do
  name=$(basename "$file")
  if nix "${nix_opts[@]}" --extra-experimental-features "nix-command flakes" eval --json \
    "path:$flake#cases.\"$name\"" >"$work/pure.json" 2>"$work/pure.err"; then
    if same_json "$repo/${file%.nix}.expected.json" "$work/pure.json"; then
      pass "$file (flake, pure)"
    else
      pretty "$work/pure.json" >"$work/pure.pretty.json"
      fail "$file evaluates differently as a flake: $(diff -u "${file%.nix}.expected.json" "$work/pure.pretty.json" | head -n 40)"
    fi
  else
    fail "$file does not evaluate as a flake: $(cat "$work/pure.err")"
  fi
done

if [[ $failures != 0 ]]; then
  echo "nix-eval-check: $failures check(s) failed" >&2
  exit 1
fi
echo "nix-eval-check: all checks passed"
