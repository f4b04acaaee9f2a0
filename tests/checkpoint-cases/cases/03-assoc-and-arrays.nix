# tests/cases/03-assoc-and-arrays.nix with a `checkpoint` output.
import ../lib/with-checkpoint.nix ../../cases/03-assoc-and-arrays.nix
