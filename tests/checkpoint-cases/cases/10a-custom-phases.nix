# tests/cases/10a-custom-phases.nix with a `checkpoint` output.
import ../lib/with-checkpoint.nix ../../cases/10a-custom-phases.nix
