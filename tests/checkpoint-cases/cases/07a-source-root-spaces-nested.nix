# tests/cases/07a-source-root-spaces-nested.nix with a `checkpoint` output.
import ../lib/with-checkpoint.nix ../../cases/07a-source-root-spaces-nested.nix
