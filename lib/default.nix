# The flake's `lib`: the adapter, the per-package functions and the CI helpers, usable with
# any nixpkgs. Each derivation gets the checkpoint-builder package this flake builds for
# its system (`builderFor`), so no overlay is needed:
#
#   checkpoint-builder.lib.ciBuild { drv = pkgs.hello; baseFile = ./.checkpoint-base; }
#
# The overlay (../stdenv-overlay) exposes the same functions bound to its own package set.
{
  lib,
  # system -> checkpoint-builder package
  builderFor,
}:
let
  adapter = import ../stdenv-overlay/adapter.nix { inherit lib builderFor; };
  ci = import ./ci.nix { inherit (adapter) withCheckpoint storePathInput; };
in
{
  inherit (adapter)
    withCheckpoints
    withCheckpoint
    prepareCheckpointBuild
    mkCheckpointBuild
    storePathInput
    ;
  inherit (ci) readCheckpointBase ciBuild;
}
