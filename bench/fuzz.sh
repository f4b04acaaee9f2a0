#!/usr/bin/env bash
# Fuzzes checkpoint-builder's parsers for a fixed time per target (stable Rust, no
# coverage feedback; see fuzz/src/main.rs) and prints, per target: seconds, executions,
# findings. Findings (inputs, and the panic message or the worker's end beside them) stay
# in target/fuzz/<target>/findings/; copy each one into fuzz/regressions/<target>/ as a
# regression input (`cargo test -p checkpoint-fuzz` replays them).
#
#   bench/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]     default: 60, every target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(manifest state pack ninja)
cargo build --quiet --release --locked -p checkpoint-fuzz >&2
fuzz=target/release/checkpoint-fuzz
echo "# bench/fuzz.sh $seconds ${targets[*]}  ($(date -u +%FT%TZ), $(nproc) cores, $(git rev-parse --short HEAD))"
status=0
for t in "${targets[@]}"; do
  "$fuzz" run "$t" "$seconds" "target/fuzz/$t"
  for f in "target/fuzz/$t/findings"/*; do
    [ -e "$f" ] || continue
    case "$f" in *.txt) continue ;; esac
    status=1
    echo "  finding: $f ($(head -c 300 "$f.txt" 2>/dev/null | tr '\n' ' '))"
  done
done
exit $status
