# The checkpoint-builder overlay. Adds, built against `final`:
#
#   rustCheckpointBuilder     the static builder binary (../nix/package.nix)
#   withCheckpoints           stdenv -> stdenv: every mkDerivation runs on the builder
#   withCheckpoint            drv -> checkpoint -> drv
#   prepareCheckpointBuild    drv -> drv (a full build that produces a checkpoint)
#   mkCheckpointBuild         drv -> checkpoint -> drv (an incremental rebuild)
#   ciBuild                   { drv, baseFile } -> drv (../lib/ci.nix, docs/ci.md)
#   rustCheckpointBuildTools  all of the above in one set, to swap for nixpkgs'
#                             `checkpointBuildTools` by changing one attribute path
#
# It changes no existing package. To make a whole package set incremental, add a second
# overlay that replaces the stdenv:
#
#   import nixpkgs {
#     overlays = [
#       checkpoint-builder.overlays.default
#       (final: prev: { stdenv = final.withCheckpoints prev.stdenv; })
#     ];
#   }
#
# or, in the nixpkgs config, `replaceStdenv = { pkgs }: pkgs.withCheckpoints pkgs.stdenv;`.
# Either works because the builder itself never comes from the set whose stdenv it
# replaces (see `rustCheckpointBuilder` below). API.md documents every function.
final: prev:
let
  adapter = import ./adapter.nix {
    inherit (final) lib;
    builderFor = _system: final.rustCheckpointBuilder;
  };
  ci = import ../lib/ci.nix { inherit (adapter) withCheckpoint storePathInput; };

  tools = {
    inherit (adapter)
      withCheckpoints
      withCheckpoint
      prepareCheckpointBuild
      mkCheckpointBuild
      ;
    inherit (ci) ciBuild readCheckpointBase;
  };
in
tools
// {
  # Built by a nixpkgs of the same source with no overlays and an empty config, for the
  # build platform (the builder runs where the build runs). Not `final.callPackage`: with
  # `stdenv = final.withCheckpoints prev.stdenv` in this set, rustc, cargo and the builder
  # itself would be built by the builder (infinite recursion). Same derivation as the
  # flake's `packages.<system>.rustCheckpointBuilder`. Override it in a later overlay to
  # use another build of the binary.
  rustCheckpointBuilder =
    let
      vanilla = import final.path {
        localSystem = {
          inherit (final.stdenv.buildPlatform) system;
        };
        config = { };
        overlays = [ ];
      };
    in
    vanilla.callPackage ../nix/package.nix { };

  rustCheckpointBuildTools = tools;
}
