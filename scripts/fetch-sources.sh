#!/usr/bin/env bash
# Downloads the upstream orig tarballs of the real projects the tests, the demo and the
# benchmarks build, as sources.lock pins them: the orig tarball of the pinned Debian source
# package (`apt-get source --print-uris PACKAGE=VERSION` names the file and where it is; Debian's
# patches are not used), checked against the pinned sha256.
#
# Usage: scripts/fetch-sources.sh [--dir DIR] [PROJECT...]
#   PROJECT    project names of sources.lock (first column); none = every pin. A name the
#              pin file does not have is an error. Callers name the projects they build, so a
#              pin that has left the archive fails only what builds it.
#   --dir DIR  defaults to $CHECKPOINT_SOURCES, else <repo>/target/sources.
#   CHECKPOINT_SOURCES_LOCK names another pin file (default: <repo>/sources.lock).
#
# Idempotent: a tarball already in DIR is verified by its sha256, never trusted by its name.
# A file whose hash does not match is an error (the file is left for you to look at); it is
# never replaced silently by another download. Needs deb-src in apt's sources
# (scripts/install-deps.sh adds it) only when something must be downloaded.
#
# When apt has no source package at the pinned version (Debian replaced the revision, e.g. at
# a point release), the other versions of the same source package apt knows are tried, and
# the first whose file list has the same orig tarball supplies it (named on stderr). Trust
# comes from the pinned sha256, which the download is checked against, not from the version.
#
# Prints one line per requested project on stdout, `<project> <absolute tarball path>`, and
# writes the same lines to DIR/orig-tarballs.txt.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
lock=${CHECKPOINT_SOURCES_LOCK:-$repo/sources.lock}

die() {
  echo "fetch-sources.sh: error: $*" >&2
  exit 1
}

dir=${CHECKPOINT_SOURCES:-$repo/target/sources}
requested=()
while [ $# -gt 0 ]; do
  case $1 in
    --dir)
      [ $# -ge 2 ] || die "--dir needs a directory"
      dir=$2
      shift 2
      ;;
    --dir=*) dir=${1#--dir=}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; requested+=("$@"); break ;;
    -*) die "unknown option $1 (usage: scripts/fetch-sources.sh [--dir DIR] [PROJECT...])" ;;
    *) requested+=("$1"); shift ;;
  esac
done

[ -r "$lock" ] || die "cannot read the pin file $lock"

# Pins: name srcpkg version file sha256, one per line of the lock file.
pins=()
while read -r name srcpkg version file sha256 extra; do
  case "$name" in '' | '#'*) continue ;; esac
  if [ -z "$sha256" ] || [ -n "${extra:-}" ] || ! [[ "$sha256" =~ ^[0-9a-f]{64}$ ]] ||
    [[ "$file" == */* ]] || [[ "$file" == .* ]]; then
    die "$lock: malformed pin line: $name $srcpkg $version $file $sha256 ${extra:-}"
  fi
  pins+=("$name $srcpkg $version $file $sha256")
done <"$lock"
[ ${#pins[@]} -gt 0 ] || die "$lock pins no source"

# The requested pins, in the order asked (each once); none asked = all of them.
if [ ${#requested[@]} -gt 0 ]; then
  declare -A pin_of=()
  for pin in "${pins[@]}"; do pin_of[${pin%% *}]=$pin; done
  declare -A seen=()
  chosen=()
  for name in "${requested[@]}"; do
    if [ -z "${pin_of[$name]+set}" ]; then
      hint=""
      [[ "$name" == */* ]] && hint=" (a directory is given with --dir DIR)"
      die "unknown project $name: $lock pins no project of that name$hint"
    fi
    [ -n "${seen[$name]+set}" ] && continue
    seen[$name]=1
    chosen+=("${pin_of[$name]}")
  done
  pins=("${chosen[@]}")
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Tests run in parallel; one download at a time per directory.
exec 9>"$dir/.fetch.lock"
flock 9

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# check_pinned FILE SRCPKG VERSION SHA256: fails with a message naming all four when FILE's
# content is not the pinned one.
check_pinned() {
  local path=$1 srcpkg=$2 version=$3 want=$4 got
  got=$(sha256_of "$path")
  if [ "$got" != "$want" ]; then
    cat >&2 <<EOF
fetch-sources.sh: error: $path does not match its pin ($srcpkg $version in $lock):
  expected sha256 $want
  actual   sha256 $got
EOF
    return 1
  fi
}

# uri_of SRCPKG VERSION FILE: the URI apt gives for FILE of that exact source version;
# nothing when apt has no such version (apt-get's failure must not end the script here).
uri_of() {
  { apt-get source --print-uris -q=2 "$1=$2" 2>/dev/null || true; } |
    awk -v f="$3" '$2 == f { u = $1; gsub(/\047/, "", u); print u; exit }'
}

# source_versions SRCPKG: the versions of the source package apt knows, one a line, each once.
source_versions() {
  apt-cache madison "$1" 2>/dev/null |
    awk -F'|' '$3 ~ /Sources/ { v = $2; gsub(/ /, "", v); if (!(v in seen)) { seen[v] = 1; print v } }' || true
}

# download SRCPKG VERSION FILE SHA256: FILE of that source version into DIR, checked by
# apt's own download helper and by us. When apt has no such version with FILE, FILE of the
# first other version of SRCPKG that has it (a Debian revision bump keeps the orig tarball);
# the pinned sha256 decides whether it is the pinned file.
download() {
  local srcpkg=$1 version=$2 file=$3 sha256=$4 uri partial from=$2 other
  uri=$(uri_of "$srcpkg" "$version" "$file")
  if [ -z "$uri" ]; then
    while read -r other; do
      if [ -z "$other" ] || [ "$other" = "$version" ]; then continue; fi
      uri=$(uri_of "$srcpkg" "$other" "$file")
      if [ -n "$uri" ]; then
        from=$other
        echo "fetch-sources.sh: apt has no $srcpkg $version; $srcpkg $other has the same $file (checked against the pinned sha256)" >&2
        break
      fi
    done < <(source_versions "$srcpkg")
  fi
  if [ -z "$uri" ]; then
    {
      echo "fetch-sources.sh: error: apt has no source package $srcpkg at version $version with the file $file,"
      echo "  nor another version of $srcpkg with that file."
      echo "  Versions of $srcpkg apt knows, with the suites they come from:"
      apt-cache madison "$srcpkg" 2>/dev/null | awk -F'|' '/Sources/ { print "   " $2 "|" $3 }' | sed 's/ *Sources$//' || true
      echo "  apt needs deb-src entries for bookworm and a fresh package index:"
      echo "  run scripts/install-deps.sh as root (it enables deb-src and runs apt-get update)."
      echo "  A source no longer in the archive needs a new pin in $lock (version, file and sha256)."
    } >&2
    exit 1
  fi
  echo "fetch-sources.sh: $srcpkg=$from: $file (from $uri)" >&2
  partial=$(mktemp "$dir/.$file.XXXXXX")
  # apt-helper checks the hash itself while it downloads. As root apt would drop to `_apt`,
  # which may not be able to write DIR.
  local sandbox=()
  [ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
  if ! /usr/lib/apt/apt-helper -q "${sandbox[@]}" download-file "$uri" "$partial" "SHA256:$sha256" >&2; then
    # apt keeps a file whose hash does not match as PATH.FAILED.
    rm -f "$partial" "$partial.FAILED"
    cat >&2 <<EOF
fetch-sources.sh: error: could not download $file of $srcpkg $from from $uri
  with sha256 $sha256 (apt's message above). Nothing was kept.
EOF
    exit 1
  fi
  if ! check_pinned "$partial" "$srcpkg" "$version" "$sha256"; then
    rm -f "$partial"
    exit 1
  fi
  chmod 0644 "$partial"
  mv "$partial" "$dir/$file"
}

manifest=$(mktemp "$dir/.orig-tarballs.XXXXXX")
trap 'rm -f "$manifest"' EXIT
for pin in "${pins[@]}"; do
  read -r name srcpkg version file sha256 <<<"$pin"
  if [ -e "$dir/$file" ]; then
    if ! check_pinned "$dir/$file" "$srcpkg" "$version" "$sha256"; then
      echo "  The file is left as it is; remove it to download the pinned one again." >&2
      exit 1
    fi
  else
    download "$srcpkg" "$version" "$file" "$sha256"
  fi
  printf '%s %s\n' "$name" "$dir/$file" >>"$manifest"
done
chmod 0644 "$manifest"
mv "$manifest" "$dir/orig-tarballs.txt"
trap - EXIT
# Still under the lock: another run cannot have replaced the list yet.
cat "$dir/orig-tarballs.txt"
