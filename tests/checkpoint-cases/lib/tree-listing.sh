# Prints the tree under the current directory with everything a checkpoint records and
# restores: one tab-separated line per entry (path, type, permission bits in octal, link
# count, mtime as seconds.fraction with nanoseconds, size, symlink target; directories get
# `-` for link count and size, which depend on the filesystem and its history), sorted by
# path, then the sha256 of every regular file. Run by tests/checkpoint-cases/c-build.nix
# inside the build and by tests/checkpoint.rs on the restored tree, so both sides list the
# same way. Uses only find, sort, xargs and sha256sum.
set -euo pipefail
export LC_ALL=C
find . -type d -printf '%p\t%y\t%m\t-\t%T@\t-\t\n' -o -printf '%p\t%y\t%m\t%n\t%T@\t%s\t%l\n' | sort
find . -type f -print0 | sort -z | xargs -0 -r sha256sum
