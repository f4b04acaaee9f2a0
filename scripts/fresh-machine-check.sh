#!/usr/bin/env bash
# Runs the README's two commands (scripts/demo.sh, then scripts/test.sh) on a bare Debian 12
# made here with debootstrap, to prove they need nothing this machine happens to have. The
# new root gets only: Debian's minbase (as the debian:bookworm container image), this
# machine's network settings (resolv.conf, apt's Acquire:: options, *_proxy variables, local
# certificate authorities in /usr/local/share/ca-certificates), the Rust toolchain (the
# invoking user's active rustup toolchain and ~/.cargo/bin, not cargo's download cache), a
# clone of the repository's committed HEAD and a copy of ../shared beside it. It then runs
# the commands with the new root as the root of a mount namespace of their own (pivot_root,
# not chroot: see step 5) and prints each one's exit code and wall time.
# See docs/fresh-machine.md.
#
# Usage: scripts/fresh-machine-check.sh [options]
#   --dir DIR       work directory (default /var/tmp/checkpoint-fresh-check); the Debian root
#                   is DIR/root (must not exist yet), logs and summary go to DIR/logs
#   --keep          keep DIR/root afterwards (default: remove it, keep DIR/logs)
#   --only demo|test  run only one of the two commands
#   --repo PATH     the repository whose committed HEAD is cloned (default: this one)
#   --shared PATH   the directory copied beside the clone as ../shared
#                   (default: PATH/../shared of the repository, if it exists)
#   --mirror URL    Debian mirror for debootstrap (default http://deb.debian.org/debian)
#
# Needs root (debootstrap, mounts, pivot_root). Every mount is made in a private mount namespace
# (unshare) and also unmounted by a trap, so none is left behind, even on failure; the root
# is removed only after checking nothing is mounted under it.
set -euo pipefail

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
repo_default=$(cd "$(dirname "$0")/.." && pwd)

die() {
  echo "fresh-machine-check.sh: error: $*" >&2
  exit 2
}
say() { echo "fresh-machine-check.sh: $*" >&2; }

# The inner part runs in the private mount namespace: see the end of this file.
inner=0
dir=/var/tmp/checkpoint-fresh-check
keep=0
only=""
repo=$repo_default
shared=""
mirror=http://deb.debian.org/debian
while [ $# -gt 0 ]; do
  case "$1" in
    --inner) inner=1 ;;
    --dir) dir=${2:?--dir needs a directory}; shift ;;
    --keep) keep=1 ;;
    --only)
      only=${2:?--only needs demo or test}; shift
      case "$only" in demo | test) ;; *) die "--only takes demo or test, not $only" ;; esac
      ;;
    --repo) repo=${2:?--repo needs a path}; shift ;;
    --shared) shared=${2:?--shared needs a path}; shift ;;
    --mirror) mirror=${2:?--mirror needs a URL}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, mounts and pivot_root need it)"

root=$dir/root
logs=$dir/logs
summary=$logs/summary.txt

# Mount points under the root, in the order they are mounted (unmounted in reverse).
mounted=()

# mounts_under DIR: mount points at or below DIR in this mount namespace.
mounts_under() {
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo
}

unmount_all() {
  local i m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    m=${mounted[i]}
    umount -R "$m" 2>/dev/null || umount -R -l "$m" 2>/dev/null || true
  done
  mounted=()
  # Anything else left below the root (debootstrap's own /proc if it stopped half-way).
  for m in $(mounts_under "$root" | sort -r); do
    umount -R -l "$m" 2>/dev/null || true
  done
}

if [ "$inner" = 1 ]; then
  trap unmount_all EXIT
  trap 'exit 130' INT TERM

  # 1. A bare Debian 12.
  say "debootstrap --variant=minbase bookworm $root $mirror"
  t0=$SECONDS
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$logs/debootstrap.log" 2>&1 ||
    { tail -n 20 "$logs/debootstrap.log" >&2; die "debootstrap failed (see $logs/debootstrap.log)"; }
  echo "debootstrap minbase bookworm: $((SECONDS - t0))s" >>"$summary"
  # Debian's standard sources for bookworm, as the installer and the container image write them
  # (debootstrap writes only the main suite).
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

  # 2. This machine's network settings, nothing else of its configuration.
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  # Locally added certificate authorities (a TLS-intercepting proxy's): the ca-certificates
  # package that install-deps.sh installs adds them to the system store, as it would here.
  if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  fi
  for f in /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] || continue
    if grep -q '^[[:space:]]*Acquire::' "$f"; then
      grep '^[[:space:]]*Acquire::' "$f" >"$root/etc/apt/apt.conf.d/50host-network-$(basename "$f")"
    fi
  done

  # 3. The Rust toolchain: rustup's settings, the toolchain active in the repository, the
  #    rustup proxies in ~/.cargo/bin. Not ~/.cargo/registry: crates come from crates.io.
  user=${SUDO_USER:-$(id -un)}
  home=$(getent passwd "$user" | cut -d: -f6)
  rustup_home=${RUSTUP_HOME:-$home/.rustup}
  cargo_home=${CARGO_HOME:-$home/.cargo}
  [ -x "$cargo_home/bin/rustup" ] || die "no rustup in $cargo_home/bin (install Rust with rustup first)"
  toolchain=$(cd "$repo" && RUSTUP_HOME=$rustup_home "$cargo_home/bin/rustup" show active-toolchain | cut -d' ' -f1)
  [ -d "$rustup_home/toolchains/$toolchain" ] || die "toolchain $toolchain not found in $rustup_home"
  say "copying Rust toolchain $toolchain from $rustup_home and $cargo_home/bin"
  mkdir -p "$root/root/.rustup/toolchains" "$root/root/.cargo"
  cp -a "$rustup_home/settings.toml" "$root/root/.rustup/"
  if [ -d "$rustup_home/update-hashes" ]; then cp -a "$rustup_home/update-hashes" "$root/root/.rustup/"; fi
  cp -a --reflink=auto "$(readlink -f "$rustup_home/toolchains/$toolchain")/." \
    "$root/root/.rustup/toolchains/$toolchain"
  cp -a "$cargo_home/bin" "$root/root/.cargo/"
  for f in env config config.toml; do
    if [ -f "$cargo_home/$f" ]; then cp -a "$cargo_home/$f" "$root/root/.cargo/"; fi
  done

  # 4. The repository's committed HEAD, and ../shared beside it (CI has it there).
  rev=$(git -C "$repo" rev-parse HEAD)
  name=$(basename "$repo")
  clone=/work/$name
  say "cloning $repo at $rev into $root$clone"
  mkdir -p "$root/work"
  git clone -q --no-checkout "$repo" "$root$clone"
  git -C "$root$clone" -c advice.detachedHead=false checkout -q --detach "$rev"
  if [ -n "$shared" ]; then
    cp -a "$shared" "$root/work/shared"
  fi
  echo "repository: $repo at $rev (clone: $clone)" >>"$summary"

  # 5. Where the commands run. Not a chroot: Nix 2.8's sandbox makes a user namespace, and
  #    the kernel refuses one to a chrooted process (EPERM: "the caller is in a chroot
  #    environment"), so every sandboxed build would fail with "user namespaces are not
  #    enabled". Instead each command runs in a mount namespace whose root is the new root
  #    (pivot_root, the host's tree then detached), as a machine's own root is. pivot_root
  #    needs the new root to be a mount point: it is bind-mounted onto itself. /sys and /dev
  #    come from the host (the sandbox binds /dev/null, /dev/pts, ... from there). Each
  #    command also gets a PID namespace of its own with its own /proc: with the host's, Nix's
  #    garbage collector counts every store path a host process has open or in its
  #    environment as a root, and the host's Nix builds use the same store paths.
  mount --bind "$root" "$root"; mounted+=("$root")
  mount --rbind /sys "$root/sys"; mount --make-rslave "$root/sys"; mounted+=("$root/sys")
  mount --rbind /dev "$root/dev"; mount --make-rslave "$root/dev"; mounted+=("$root/dev")

  # run_in_root CMD...: CMD with the new root as its mount namespace's root, in a PID
  # namespace of its own (every process left when CMD ends is killed with it).
  run_in_root() {
    unshare --mount --propagation private --pid --fork -- /bin/sh -c '
      cd "$1" && mount -t proc proc proc && mkdir -p .host-root &&
      pivot_root . .host-root && cd / &&
      umount -l /.host-root && rmdir /.host-root && shift && exec "$@"' sh "$root" "$@"
  }

  # 6. The README's two commands, as root in the new root, with a clean environment.
  path=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  env_vars=(HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 TERM=dumb "PATH=$path")
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    if [ -n "${!v:-}" ]; then env_vars+=("$v=${!v}"); fi
  done
  commands=(demo test)
  [ -n "$only" ] && commands=("$only")
  status=0
  for c in "${commands[@]}"; do
    say "running scripts/$c.sh in the fresh root (log: $logs/$c.log)"
    t0=$(date +%s)
    set +e
    run_in_root /usr/bin/env -i "${env_vars[@]}" /bin/bash -c "cd '$clone' && scripts/$c.sh" \
      >"$logs/$c.log" 2>&1 </dev/null
    rc=$?
    set -e
    t1=$(date +%s)
    printf 'scripts/%s.sh: exit %d, wall %dm%02ds (log: %s)\n' "$c" "$rc" $(((t1 - t0) / 60)) $(((t1 - t0) % 60)) "$logs/$c.log" >>"$summary"
    [ "$rc" = 0 ] || status=1
  done
  exit "$status"
fi

# The outer part: set up, run the inner part in a private mount namespace, clean up, report.
repo=$(cd "$repo" && pwd)
git -C "$repo" rev-parse HEAD >/dev/null 2>&1 || die "$repo is not a git repository"
if [ -z "$shared" ] && [ -d "$repo/../shared" ]; then shared=$(cd "$repo/../shared" && pwd); fi
[ -e "$root" ] && die "$root already exists; remove it or choose another --dir"
command -v debootstrap >/dev/null || {
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
}
mkdir -p "$logs"
rm -f "$summary"
date -u +"fresh-machine check, started %Y-%m-%d %H:%M:%S UTC" >"$summary"

remove_root() {
  [ -e "$root" ] || return 0
  if [ "$keep" = 1 ]; then
    say "kept the root: $root"
    return 0
  fi
  if [ -n "$(mounts_under "$root")" ]; then
    say "NOT removing $root: still mounted under it: $(mounts_under "$root" | tr '\n' ' ')"
    return 0
  fi
  say "removing $root"
  rm -rf --one-file-system "$root"
}
trap remove_root EXIT
trap 'exit 130' INT TERM

t0=$SECONDS
set +e
unshare --mount --propagation private -- "$self" --inner --dir "$dir" --repo "$repo" \
  ${shared:+--shared "$shared"} ${only:+--only "$only"} --mirror "$mirror"
status=$?
set -e
echo "total: $(((SECONDS - t0) / 60))m$(((SECONDS - t0) % 60))s, status $status" >>"$summary"
echo >&2
cat "$summary"
exit "$status"
