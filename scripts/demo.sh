#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine as root: build a real project (default zstd,
# from Debian's source package) with the stock builder and with checkpoint-builder writing a
# `checkpoint` output; show that `out` is NAR-identical (own output hash replaced by a
# placeholder), the timings, and the checkpoint (inspect, verify, restore after buildPhase);
# then change one line of one C file and rebuild incrementally from that checkpoint, compared
# (time, compiler runs, NAR) with a stock clean build of the changed source.
#
# Usage: scripts/demo.sh [hello|lua|zstd]
set -euo pipefail
cd "$(dirname "$0")/.."
project=${1:-zstd}

scripts/install-deps.sh >&2
sources=$PWD/target/sources
scripts/fetch-sources.sh --dir "$sources" "$project" >/dev/null
builder=$(scripts/build-static.sh)
salt="demo-$(date +%s%N)"

nix_opts=(--option build-users-group '' --option sandbox true
  --option extra-sandbox-paths '/bin /usr /lib /lib64 /etc/alternatives'
  --option substituters '' --option cores 2 --option max-jobs 1)
args=(--argstr project "$project" --arg sources "$sources" --argstr salt "$salt")

instantiate() { nix-instantiate "${nix_opts[@]}" scripts/demo.nix "${args[@]}" "$@"; }
realise_inputs() {
  nix-store "${nix_opts[@]}" --realise $(nix-store -q --references "$1") >/dev/null 2>&1
}
now() { date +%s.%N; }
hash_of() { basename "$1" | cut -c1-32; }
normalised_nar() {
  nix-store --dump "$1" | perl -pe "BEGIN{binmode STDIN;binmode STDOUT} s/$(hash_of "$1")/$(printf '0%.0s' {1..32})/g; s/$(hash_of "$1" | cut -c1-10)/0000000000/g"
}
same() { cmp -s <(normalised_nar "$1") <(normalised_nar "$2") && echo identical || echo DIFFERENT; }
first_output() { nix-store -q --outputs "$1" | grep -v -- '-checkpoint$'; }

# 1. A full build, stock and with checkpoint-builder writing a checkpoint.
stock_drv=$(instantiate)
ours_drv=$(instantiate --arg builder "$builder")
realise_inputs "$stock_drv"; realise_inputs "$ours_drv"
echo "== stock build of $project" >&2
t0=$(now); nix-store "${nix_opts[@]}" --realise "$stock_drv" >/dev/null 2>/tmp/demo-stock.log; t1=$(now)
echo "== checkpoint-builder build of $project, with a checkpoint output" >&2
t2=$(now); nix-store "${nix_opts[@]}" --realise "$ours_drv" >/dev/null 2>/tmp/demo-ours.log; t3=$(now)
tail -n 16 /tmp/demo-ours.log >&2
stock_out=$(first_output "$stock_drv")
ours_out=$(first_output "$ours_drv")
checkpoint=$(nix-store -q --outputs "$ours_drv" | grep -- '-checkpoint$')
full_same=$(same "$stock_out" "$ours_out")

echo "== checkpoint" >&2
"$builder" inspect "$checkpoint"
"$builder" verify "$checkpoint"
restored=$(mktemp -d -u)
"$builder" restore "$checkpoint" --after buildPhase "$restored"
first_c=$(find "$restored/build" -name '*.c' -print -quit)
newer=$(find "$restored/build" -name '*.o' -newer "$first_c" | wc -l)
objects=$(find "$restored/build" -name '*.o' | wc -l)
# Bytes of regular files on both sides (what a NAR stores; du would add directory inodes).
file_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
build_size=$(file_bytes "$restored/build")
ck_size=$(file_bytes "$checkpoint")
chmod -R u+w "$restored"; rm -rf "$restored"

# 2. One line of one C file changes: an incremental rebuild from that checkpoint, and a stock
#    clean build of the changed source to compare with.
inc_drv=$(instantiate --arg builder "$builder" --argstr variant oneline --argstr base "$checkpoint")
clean_drv=$(instantiate --argstr variant oneline)
realise_inputs "$inc_drv"; realise_inputs "$clean_drv"
echo "== incremental rebuild of $project after a one-line change" >&2
t4=$(now); nix-store "${nix_opts[@]}" --realise "$inc_drv" >/dev/null 2>/tmp/demo-incremental.log; t5=$(now)
grep -E '^checkpoint-builder: [a-zA-Z]+Phase +(restored|ran)' /tmp/demo-incremental.log >&2
echo "== stock clean build of the changed source" >&2
t6=$(now); nix-store "${nix_opts[@]}" --realise "$clean_drv" >/dev/null 2>/tmp/demo-clean.log; t7=$(now)
inc_same=$(same "$(first_output "$clean_drv")" "$(first_output "$inc_drv")")
compiled_inc=$(grep -cE '(^| )(cc|gcc)( |$).* -c |^\s*CC ' /tmp/demo-incremental.log || true)
compiled_clean=$(grep -cE '(^| )(cc|gcc)( |$).* -c |^\s*CC ' /tmp/demo-clean.log || true)

el() { echo "$2 - $1" | bc; }
awk -v s="$(el "$t0" "$t1")" -v o="$(el "$t2" "$t3")" -v i="$(el "$t4" "$t5")" -v c="$(el "$t6" "$t7")" \
  -v fs="$full_same" -v is="$inc_same" -v p="$project" -v obj="$objects" -v newer="$newer" \
  -v bs="$build_size" -v cs="$ck_size" -v ci="$compiled_inc" -v cc="$compiled_clean" 'BEGIN {
  printf "\n%s, full build:  stock %.2fs, ours with checkpoint %.2fs (ratio %.3f); out %s to stock\n", p, s, o, o / s, fs
  printf "checkpoint: %d bytes for a %d-byte build directory after buildPhase (ratio %.2f)\n", cs, bs, cs / bs
  printf "restore after buildPhase: %d object files, %d newer than the first source file (real mtimes)\n", obj, newer
  printf "%s, one-line change: incremental %.2fs (%d compiler runs) vs stock clean build %.2fs (%d compiler runs): %.1fx faster; out %s to the clean build\n", p, i, ci, c, cc, c / i, is
}'
[ "$full_same" = identical ] && [ "$inc_same" = identical ]
