# tests/cases/21a-options-carried.nix with a `checkpoint` output.
import ../lib/with-checkpoint.nix ../../cases/21a-options-carried.nix
