# tests/cases/09-working-directory.nix with a `checkpoint` output.
import ../lib/with-checkpoint.nix ../../cases/09-working-directory.nix
