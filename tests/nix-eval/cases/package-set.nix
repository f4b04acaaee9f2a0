# The two documented ways to make a whole package set incremental: an overlay replacing
# `stdenv`, and `config.replaceStdenv`. In both, packages run on checkpoint-builder while
# the builder itself is built by the stock stdenv (else it would be its own builder).
let
  h = import ../harness.nix;
  inherit (h) describe pkgsWith overlay;

  viaOverlay = h.swapped;
  viaConfig = pkgsWith {
    overlays = [ overlay ];
    config.replaceStdenv = { pkgs }: pkgs.withCheckpoints pkgs.stdenv;
  };

  summary = pkgs: {
    hello = describe pkgs.hello;
    builderBuiltBy = describe pkgs.rustCheckpointBuilder;
    # The binary hello runs on is the set's rustCheckpointBuilder.
    helloUsesTheSetsBuilder =
      pkgs.hello.drvAttrs.builder == "${pkgs.rustCheckpointBuilder}/bin/checkpoint-builder";
    checkpointBashIsStdenvShell = pkgs.hello.drvAttrs.checkpointBash == pkgs.stdenv.shell;
  };
in
{
  overlay = summary viaOverlay;
  replaceStdenv = summary viaConfig;
  # The overlay alone changes no package.
  overlayAloneChangesNothing = h.pkgs.hello.drvPath == (pkgsWith { }).hello.drvPath;
  # All three agree on the builder derivation.
  oneBuilder =
    viaOverlay.rustCheckpointBuilder.drvPath == h.pkgs.rustCheckpointBuilder.drvPath
    && viaConfig.rustCheckpointBuilder.drvPath == h.pkgs.rustCheckpointBuilder.drvPath;
  # The same derivation as the flake's package.
  flakePackageIsTheOverlays =
    h.flakeOutputs.packages.x86_64-linux.default.drvPath == h.pkgs.rustCheckpointBuilder.drvPath;
  # `rustCheckpointBuildTools` holds the functions under the names nixpkgs'
  # `checkpointBuildTools` uses (and ours).
  tools = builtins.attrNames h.pkgs.rustCheckpointBuildTools;
}
