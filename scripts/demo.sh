#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine as root: build a real project (default zstd,
# from Debian's source package) with the stock builder and with checkpoint-builder writing a
# `checkpoint` output; show that `out` is NAR-identical (own output hash replaced by a
# placeholder), the timings, and the checkpoint: inspect, verify, restore after buildPhase.
#
# Usage: scripts/demo.sh [hello|lua|zstd]
set -euo pipefail
cd "$(dirname "$0")/.."
project=${1:-zstd}

scripts/install-deps.sh >&2
scripts/fetch-sources.sh >/dev/null
sources=$PWD/target/sources
builder=$(scripts/build-static.sh)
salt="demo-$(date +%s%N)"

nix_opts=(--option build-users-group '' --option sandbox true
  --option extra-sandbox-paths '/bin /usr /lib /lib64 /etc/alternatives'
  --option substituters '' --option cores 2 --option max-jobs 1)
args=(--argstr project "$project" --arg sources "$sources" --argstr salt "$salt")

# Inputs (stdenv, sources, the builder binary) first, so the clock sees only the builds.
stock_drv=$(nix-instantiate "${nix_opts[@]}" scripts/demo.nix "${args[@]}")
ours_drv=$(nix-instantiate "${nix_opts[@]}" scripts/demo.nix "${args[@]}" --arg builder "$builder")
for d in "$stock_drv" "$ours_drv"; do
  nix-store "${nix_opts[@]}" --realise $(nix-store -q --references "$d" | grep -v '\.drv$' || true) \
    $(nix-store -q --references "$d" | grep '\.drv$' || true) >/dev/null 2>&1
done

now() { date +%s.%N; }
echo "== stock build of $project" >&2
t0=$(now); stock_out=$(nix-store "${nix_opts[@]}" --realise "$stock_drv" 2>/tmp/demo-stock.log); t1=$(now)
echo "== checkpoint-builder build of $project, with a checkpoint output" >&2
t2=$(now); nix-store "${nix_opts[@]}" --realise "$ours_drv" >/dev/null 2>/tmp/demo-ours.log; t3=$(now)
ours_out=$(nix-store -q --outputs "$ours_drv" | grep -v -- '-checkpoint$')
checkpoint=$(nix-store -q --outputs "$ours_drv" | grep -- '-checkpoint$')
tail -n 16 /tmp/demo-ours.log >&2

hash_of() { basename "$1" | cut -c1-32; }
normalised_nar() { nix-store --dump "$1" | perl -pe "BEGIN{binmode STDIN;binmode STDOUT} s/$(hash_of "$1")/$(printf '0%.0s' {1..32})/g"; }
if cmp -s <(normalised_nar "$stock_out") <(normalised_nar "$ours_out"); then
  same="identical"
else
  same="DIFFERENT"
fi

echo "== checkpoint" >&2
"$builder" inspect "$checkpoint"
"$builder" verify "$checkpoint"
restored=$(mktemp -d)
"$builder" restore "$checkpoint" --after buildPhase "$restored"
newer=$(find "$restored/build" -name '*.o' -newer "$(find "$restored/build" -name '*.c' | head -n1)" | wc -l)
objects=$(find "$restored/build" -name '*.o' | wc -l)
build_size=$(du -sb "$restored/build" | cut -f1)
ck_size=$(du -sb "$checkpoint" | cut -f1)
rm -rf "$restored"

awk -v s="$(echo "$t1 - $t0" | bc)" -v o="$(echo "$t3 - $t2" | bc)" -v same="$same" \
  -v p="$project" -v obj="$objects" -v newer="$newer" -v bs="$build_size" -v cs="$ck_size" 'BEGIN {
  printf "\n%s: stock %.2fs, ours with checkpoint %.2fs, ratio %.3f; out %s to stock\n", p, s, o, o / s, same
  printf "checkpoint %d bytes for a %d-byte build directory after buildPhase (ratio %.2f)\n", cs, bs, cs / bs
  printf "restore after buildPhase: %d object files, %d newer than the first source file (real mtimes)\n", obj, newer
}'
echo "Reuse of a checkpoint (incremental rebuild) is not implemented yet: see README, Status." >&2
[ "$same" = identical ]
