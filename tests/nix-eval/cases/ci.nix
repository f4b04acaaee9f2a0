# readCheckpointBase and ciBuild with the base files in ../base-files/.
let
  h = import ../harness.nix;
  inherit (h) pkgs describe fails;
  inherit (pkgs) ciBuild readCheckpointBase;
  files = ../base-files;

  read = name: h.normalise (readCheckpointBase (files + "/${name}"));
  build = name: ciBuild {
    drv = pkgs.hello;
    baseFile = files + "/${name}";
  };
in
{
  read = {
    null = read "null";
    empty = read "empty";
    missing = read "does-not-exist";
    storePath = read "store-path";
    commentsAndBlanks = read "comments";
  };
  # The read path is an input path of any derivation that uses it.
  storePathContext = h.contextOf (readCheckpointBase (files + "/store-path"));

  ciBuild = {
    null = describe (build "null");
    missing = describe (build "does-not-exist");
    storePath = describe (build "store-path");
    # The fallback a CI builds when the base cannot be fetched: no base.
    withoutBase = describe (build "store-path").withoutBase;
    checkpointBase = h.normalise (build "store-path").checkpointBase;
    # With no base the build is the plain withCheckpoint one.
    nullIsWithCheckpointNull = (build "null").drvPath == (pkgs.withCheckpoint pkgs.hello null).drvPath;
  };

  errors = {
    twoPaths = fails (readCheckpointBase (files + "/two-paths"));
    notAStorePath = fails (readCheckpointBase (files + "/not-a-store-path"));
  };

  # The flake's lib does the same with the flake's builder package for the drv's system.
  flakeLib = describe (
    h.flakeOutputs.lib.ciBuild {
      drv = pkgs.hello;
      baseFile = files + "/store-path";
    }
  );
}
