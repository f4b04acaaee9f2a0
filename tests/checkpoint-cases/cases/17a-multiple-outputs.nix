# tests/cases/17a-multiple-outputs.nix with a `checkpoint` output.
import ../lib/with-checkpoint.nix ../../cases/17a-multiple-outputs.nix
