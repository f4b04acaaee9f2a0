# Shell functions the benchmark scripts share; sourced (`source "$repo/bench/lib.sh"`, with
# `repo` the repository's root), not run.

# nix_opts: the harness's Nix options, for every nix-store --realise of the benchmarks: the
# local store as root (no build users), the sandbox on with the host's toolchain bound in,
# no binary cache, 2 cores, one job at a time.
nix_opts=(
  --option build-users-group '' --option sandbox true
  --option extra-sandbox-paths '/bin /usr /lib /lib64 /etc/alternatives'
  --option substituters '' --cores 2 --max-jobs 1
)

# project_sources DIR PROJECT...: fetches the sources.lock pins the projects of tests/projects
# build from (zstd-cmake and zstd-cmake-make use zstd's tarball, pixman-meson the corpus's
# pixman; every other project its own name) into DIR (empty: scripts/fetch-sources.sh's
# default) and prints the directory they are in, which tests/projects/default.nix takes as
# `sources`. Only those pins are fetched, so a pin that has left the archive stops only the
# runs that build it.
project_sources() {
  local dir=$1 project fetched
  shift
  local pins=()
  for project in "$@"; do
    case $project in
      zstd-cmake*) pins+=(zstd) ;;
      pixman-meson) pins+=(corpus-pixman) ;;
      *) pins+=("$project") ;;
    esac
  done
  # fetch-sources.sh prints `<pin> <tarball>` per pin.
  fetched=$("$repo/scripts/fetch-sources.sh" ${dir:+--dir "$dir"} "${pins[@]}") || return 1
  dirname "$(awk 'NR==1 {print $2}' <<<"$fetched")"
}

# lower_median VALUE...: the median of the values, for an even count the lower of the middle
# two (a value that was measured; reuse.sh's own `median` averages them), `-` when there are
# none.
lower_median() { printf '%s\n' "$@" | sort -n | awk 'NF { v[++n] = $1 } END { print n ? v[int((n + 1) / 2)] : "-" }'; }

# store_device: the device number of the filesystem /nix/store is on; on a fresh machine,
# before the first Nix command creates it, that of its nearest existing parent, where Nix
# will create it.
store_device() {
  local d=/nix/store
  while [ ! -e "$d" ]; do d=$(dirname "$d"); done
  stat -c %d "$d"
}

# limit_outputs_root DIR WORK: where a benchmark's plain builds install and run fixupPhase
# (their prefix's parent): DIR when not empty; else /tmp when it is on the filesystem of
# /nix/store, where every Nix build writes its outputs (installing and stripping there can
# cost more than on a tmpfs); else WORK.
limit_outputs_root() {
  if [ -n "$1" ]; then
    echo "$1"
  elif [ "$(stat -c %d /tmp)" = "$(store_device)" ]; then
    echo /tmp
  else
    echo "$2"
  fi
}

# on_store_filesystem DIR: DIR and whether it is on the filesystem of /nix/store, for a
# benchmark's report.
on_store_filesystem() {
  local not="not "
  [ "$(stat -c %d "$1")" != "$(store_device)" ] || not=""
  echo "$1 (${not}on the filesystem of /nix/store)"
}

# stdenv_fixup DIR LOG SECONDS [OUT]: the stdenv's fixupPhase over OUT (default DIR/out),
# what a plain build outside Nix installed (strip, patchShebangs, …: what every Nix build
# runs after installPhase over the outputs it wrote), its output into LOG and its wall time
# into the file SECONDS (with the caller's `now` and `secs`). Only in nix-shell, where the
# stdenv defines fixupPhase (else nothing). DIR/tmp is its TMPDIR, as /build is beside $out
# in Nix: hooks flag what points into TMPDIR (a symlink into /tmp would be one here).
stdenv_fixup() {
  local top=$1 log=$2 seconds=$3 dest=${4:-$1/out} t0 t1
  declare -F fixupPhase >/dev/null || return 0
  t0=$(now)
  mkdir -p "$top/tmp"
  (outputs=out out=$dest prefix=$dest TMPDIR=$top/tmp; fixupPhase) >"$log" 2>&1 || return 1
  t1=$(now)
  secs "$t0" "$t1" >"$seconds"
}

# own_time_fields LOG: "own restore analysis snapshot carry written hashed" of a build's log
# (checkpoint-builder's "own time:" line and its restore and snapshot lines): seconds, with
# own = base check + restore + analysis + snapshot + carry, then the MB its restores wrote
# and its snapshots hashed; `-` for each when the log has no own-time line (a stock build,
# or a builder from before that line).
own_time_fields() {
  local log=$1 line k v own=0 fields=()
  line=$(grep -ao 'own time: .*' "$log" 2>/dev/null | tail -n 1) || { echo "- - - - - - -"; return; }
  for k in "base check" restore analysis snapshot carry; do
    v=$(grep -o "$k [0-9.]*s" <<<"$line" | grep -o '[0-9.]*' || echo 0)
    own=$(awk -v a="$own" -v b="$v" 'BEGIN { printf "%.3f", a + b }')
    [ "$k" = "base check" ] || fields+=("$v")
  done
  printf '%s %s %s %s\n' "$own" "${fields[*]}" \
    "$(grep -ao '[0-9.]* MB written' "$log" | awk '{ s += $1 } END { printf "%.1f", s }')" \
    "$(grep -ao '[0-9.]* MB hashed' "$log" | awk '{ s += $1 } END { printf "%.1f", s }')"
}

# The fields own_time_fields prints, in its order (the keys of a summary's own-time values).
own_time_keys=(own restore analysis snapshot carry written hashed)
