# tests/cases/01-autotools-like.nix with a `checkpoint` output.
import ../lib/with-checkpoint.nix ../../cases/01-autotools-like.nix
