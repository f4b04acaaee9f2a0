#!/usr/bin/env bash
# Installs what checkpoint-builder's builds and tests need on a fresh Debian 12
# (bookworm), as root.  Idempotent: safe to run again at any time.
#
# - Enables deb-src for every bookworm entry already configured (deb822
#   `*.sources` stanzas and one-line `sources.list` entries), in files of its
#   own under /etc/apt/sources.list.d/, unless deb-src is already configured
#   somewhere; existing apt files are never edited.
# - Installs Nix (Debian's nix-bin), the host toolchain the Nix sandbox binds
#   in (gcc, make, binutils, ...), the archive tools the stdenv unpacks with,
#   dpkg-dev (so `apt-get source` works) and git.
# - Never touches /etc/nix/nix.conf: every Nix option is passed on the command
#   line (see scripts/fetch-sources.sh and tests/common).
#
# Rust is not installed here (Debian's rustc is older than the workspace's
# rust-version); with rustup's stable toolchain the host target
# x86_64-unknown-linux-gnu builds the static binary with crt-static as is.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: must run as root" >&2
  exit 1
fi

apt_dir=/etc/apt
list_d=$apt_dir/sources.list.d
own_sources=$list_d/checkpoint-deb-src.sources
own_list=$list_d/checkpoint-deb-src.list

# Is deb-src configured by a file that is not ours?
foreign_deb_src() {
  local f
  for f in "$apt_dir/sources.list" "$list_d"/*.list "$list_d"/*.sources; do
    [ -f "$f" ] || continue
    [ "$f" = "$own_sources" ] || [ "$f" = "$own_list" ] && continue
    if grep -Eqs '^[[:space:]]*deb-src[[:space:]]|^Types:.*\bdeb-src\b' "$f"; then
      return 0
    fi
  done
  return 1
}

# deb822: copy every enabled stanza with Types containing `deb` and a bookworm
# suite, as Types: deb-src.  Continuation lines (an inline Signed-By key) stay
# attached to their field.
deb822_to_src() {
  awk '
    function flush() {
      if (n > 0 && is_deb && is_bookworm && !disabled) {
        if (printed) print ""
        print "Types: deb-src"
        for (i = 1; i <= n; i++) if (lines[i] !~ /^Types:/) print lines[i]
        printed = 1
      }
      n = 0; is_deb = 0; is_bookworm = 0; disabled = 0; in_types = 0
    }
    /^#/ { next }
    /^[[:space:]]*$/ { flush(); next }
    /^[[:space:]]/ { if (n > 0 && !in_types) lines[n] = lines[n] "\n" $0; next }
    {
      in_types = ($0 ~ /^Types:/)
      if (in_types) { if ($0 ~ /[[:space:]]deb([[:space:]]|$)/) is_deb = 1; next }
      if ($0 ~ /^Suites:/ && $0 ~ /bookworm/) is_bookworm = 1
      if ($0 ~ /^Enabled:[[:space:]]*no/) disabled = 1
      lines[++n] = $0
    }
    END { flush() }
  ' "$@"
}

# One-line format: `deb [opts] URI bookworm... components` -> `deb-src ...`.
list_to_src() {
  sed -nE 's/^[[:space:]]*deb([[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+bookworm)/deb-src\1/p' "$@"
}

enable_deb_src() {
  if foreign_deb_src; then
    echo "install-deps.sh: deb-src already configured; leaving apt sources alone" >&2
    rm -f "$own_sources" "$own_list"
    return
  fi
  local sources=() lists=() f
  for f in "$list_d"/*.sources; do
    [ -f "$f" ] && [ "$f" != "$own_sources" ] && sources+=("$f")
  done
  for f in "$apt_dir/sources.list" "$list_d"/*.list; do
    [ -f "$f" ] && [ "$f" != "$own_list" ] && lists+=("$f")
  done
  local src822="" srclist=""
  [ ${#sources[@]} -gt 0 ] && src822=$(deb822_to_src "${sources[@]}")
  [ ${#lists[@]} -gt 0 ] && srclist=$(list_to_src "${lists[@]}")
  if [ -z "$src822" ] && [ -z "$srclist" ]; then
    # No bookworm entry to mirror: use Debian's default mirrors.
    src822=$(
      cat <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    )
  fi
  local header="# Written by checkpoint-builder scripts/install-deps.sh: deb-src for apt-get source."
  write_if_changed "$own_sources" "$src822" "$header"
  write_if_changed "$own_list" "$srclist" "$header"
}

# write_if_changed FILE CONTENT HEADER: empty CONTENT removes FILE.
write_if_changed() {
  local file=$1 content=$2 header=$3
  if [ -z "$content" ]; then
    rm -f "$file"
    return
  fi
  local want
  want=$(printf '%s\n%s\n' "$header" "$content")
  if [ ! -f "$file" ] || [ "$(cat "$file")" != "$want" ]; then
    printf '%s\n' "$want" >"$file"
    echo "install-deps.sh: wrote $file" >&2
  fi
}

enable_deb_src

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
packages=(
  nix-bin         # nix-build, nix-store (Debian 12: Nix 2.8)
  build-essential # gcc, g++, make, libc6-dev, dpkg-dev
  binutils        # strip, ar, ranlib, objcopy (stdenv's strip hook)
  patchelf        # the stdenv's RPATH audit and shrinking
  file            # part of the stdenv's initialPath in nixpkgs
  xz-utils zstd gzip bzip2 # unpacking orig tarballs
  patch diffutils # patchPhase, checkpoint baselines
  cmake meson ninja-build # the CMake, Meson and ninja projects of the tests
  autoconf automake # tests/reuse-cases/autotools-project.nix makes its release tarballs
  dpkg-dev        # apt-get source
  bc              # scripts/demo.sh and bench/resume.sh compute elapsed times with it
  rsync           # bench/reuse.sh and bench/scale.sh run nixpkgs' checkpointBuildTools flow
  ca-certificates
  git
  skopeo umoci   # tests/oci.rs: inspect and unpack exported images
  openssh-server  # tests/remote_builder.rs: sshd on loopback for a remote Nix builder
  podman          # tests/oci.rs: load and mount an exported image
)
apt-get install -y -q --no-install-recommends "${packages[@]}"

# nix-bin ships without a store directory on some images; a local store as
# root needs /nix to exist.
mkdir -p /nix

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps.sh: note: cargo not found; install Rust with rustup (stable)" >&2
fi
echo "install-deps.sh: done" >&2
