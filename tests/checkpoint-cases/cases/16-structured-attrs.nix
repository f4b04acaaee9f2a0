# tests/cases/16-structured-attrs.nix with a `checkpoint` output.
import ../lib/with-checkpoint.nix ../../cases/16-structured-attrs.nix
