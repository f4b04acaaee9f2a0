#!/usr/bin/env bash
# Resume benchmark (development cache, issue 6): in one run, a stock full build of a project
# (default zstd), then with checkpoint-builder and a fresh development cache a build whose
# installPhase fails, then the fixed build, which resumes after buildPhase. Prints the times
# and resume / stock. Not a test; it checks only that the resumed build did not run buildPhase.
#
# Usage: bench/resume.sh [PROJECT]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
project=${1:-zstd}
sources=$repo/target/sources
# The project's pin alone (zstd-cmake builds zstd's tarball).
case $project in zstd-cmake*) pin=zstd ;; *) pin=$project ;; esac
scripts/fetch-sources.sh --dir "$sources" "$pin" >/dev/null
builder=${CHECKPOINT_BUILDER:-$(scripts/build-static.sh)}
salt="resume-$(date +%s%N)"
cache=$(mktemp -d /var/tmp/checkpoint-resume-bench.XXXXXX)
chmod 1777 "$cache"
trap 'rm -rf "$cache"' EXIT

opts=(--option build-users-group '' --option sandbox true
  --option extra-sandbox-paths "/bin /usr /lib /lib64 /etc/alternatives $cache"
  --option substituters '' --option cores 2 --option max-jobs 1)
args=(bench/resume.nix --argstr project "$project" --arg sources "$sources" --argstr salt "$salt")
stock=$(nix-instantiate "${opts[@]}" "${args[@]}" 2>/dev/null)
broken=$(nix-instantiate "${opts[@]}" "${args[@]}" --arg builder "$builder" --argstr cache "$cache" --argstr variant broken 2>/dev/null)
fixed=$(nix-instantiate "${opts[@]}" "${args[@]}" --arg builder "$builder" --argstr cache "$cache" --argstr variant fixed 2>/dev/null)
# Inputs first, so the clock sees only the builds.
for d in "$stock" "$broken" "$fixed"; do
  nix-store "${opts[@]}" --realise $(nix-store -q --references "$d") >/dev/null 2>&1
done

now() { date +%s.%N; }
t0=$(now); nix-store "${opts[@]}" --realise "$stock" >/dev/null 2>/tmp/resume-stock.log; t1=$(now)
if nix-store "${opts[@]}" --realise "$broken" >/dev/null 2>/tmp/resume-broken.log; then
  echo "resume.sh: the broken build succeeded?" >&2; exit 1
fi
t2=$(now); nix-store "${opts[@]}" --realise "$fixed" >/dev/null 2>/tmp/resume-fixed.log; t3=$(now)
if grep -q '^Running phase: buildPhase' /tmp/resume-fixed.log; then
  echo "resume.sh: the fixed build ran buildPhase again" >&2; exit 1
fi
grep -E '^checkpoint-builder: [a-zA-Z]+Phase +(restored|ran)' /tmp/resume-fixed.log
awk -v s="$(echo "$t1 - $t0" | bc)" -v r="$(echo "$t3 - $t2" | bc)" -v p="$project" 'BEGIN {
  printf "\n%s: stock full build %.2fs; resume after the fixed installPhase %.2fs; resume/stock %.3f\n", p, s, r, r / s
}'
