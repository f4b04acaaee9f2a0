# withCheckpoint and the checkpointBuildTools-style pair on one package.
let
  h = import ../harness.nix;
  inherit (h) pkgs describe fails;
  inherit (pkgs) hello withCheckpoint;

  prepared = pkgs.prepareCheckpointBuild hello;
  changed = hello.overrideAttrs (prev: {
    postPatch = "echo changed";
  });
  rebuilt = pkgs.mkCheckpointBuild changed prepared;

  # A checkpoint named by its store path, as read from a file (no string context).
  checkpointPath = builtins.head (builtins.match "([^\n]*)\n?" (builtins.readFile ../base-files/store-path));
in
{
  # A full build that still produces a checkpoint: no checkpointBase at all.
  prepared = describe prepared;
  preparedIsWithCheckpointNull = prepared.drvPath == (withCheckpoint hello null).drvPath;

  # The base is the checkpoint output of the earlier build, as a derivation input (the
  # `checkpoint` output of its .drv), not copied, not a reference of the new outputs.
  rebuilt = describe rebuilt;
  rebuiltIsWithCheckpoint = rebuilt.drvPath == (withCheckpoint changed prepared).drvPath;
  # Passing the output itself or the derivation gives the same derivation.
  outputOrDerivation = (withCheckpoint changed prepared.checkpoint).drvPath == rebuilt.drvPath;
  # A plain store path becomes an input path (inputSrcs).
  fromStorePath = describe (withCheckpoint changed checkpointPath);
  fromStorePathSameValue = (withCheckpoint changed checkpointPath).drvAttrs.checkpointBase == checkpointPath;

  # Outputs keep their order and get the checkpoint once, however often it is applied.
  reapplied = (withCheckpoint (withCheckpoint hello null) prepared).outputs;
  # The user's attributes survive (postPatch) and passthru is kept.
  keepsAttributes = rebuilt.drvAttrs.postPatch == "echo changed" && rebuilt ? tests;

  # Refused with a message (the script checks the messages).
  errors = {
    mkCheckpointBuildWithoutCheckpoint = fails (pkgs.mkCheckpointBuild changed null).drvPath;
    notAStorePath = fails (withCheckpoint changed "/tmp/checkpoint").drvPath;
    derivationWithoutCheckpoint = fails (withCheckpoint changed pkgs.cargo).drvPath;
    customBuilder = fails (withCheckpoint (hello.overrideAttrs { builder = ../custom-builder.sh; }) null)
      .drvPath;
    notADerivation = fails (withCheckpoint { name = "x"; } null);
  };
}
