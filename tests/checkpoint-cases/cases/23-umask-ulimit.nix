# tests/cases/23-umask-ulimit.nix with a `checkpoint` output.
import ../lib/with-checkpoint.nix ../../cases/23-umask-ulimit.nix
