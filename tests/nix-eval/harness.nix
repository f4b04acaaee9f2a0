# Shared by the evaluation cases (cases/*.nix): the stub nixpkgs with the repository's
# overlay, the flake's outputs evaluated on the stub, and functions that turn derivations
# into plain data with store hashes replaced, so the expected JSON beside each case does
# not change when an unrelated file does.
let
  repo = ../..;
  stubPath = ./stub-nixpkgs;
  lib = import ./stub-nixpkgs/lib.nix;
  overlay = import (repo + "/stdenv-overlay");

  pkgsWith = args: import stubPath ({ system = "x86_64-linux"; } // args);

  # "/nix/store/<hash>-name" -> "<store>/name", everywhere in a value (a path value
  # becomes the store path Nix copies it to).
  normalise =
    v:
    if builtins.isString v then
      lib.concatMapStrings (x: if builtins.isList x then "<store>/" else x) (
        builtins.split "${builtins.storeDir}/[0-9a-df-np-sv-z]{32}-" (builtins.unsafeDiscardStringContext v)
      )
    else if builtins.isPath v then
      normalise "${v}"
    else if builtins.isList v then
      map normalise v
    else if builtins.isAttrs v then
      builtins.mapAttrs (_: normalise) v
    else
      v;

  # What a string's context makes of it in a derivation: a plain input path or outputs of
  # a derivation.
  contextOf =
    s:
    map (
      p:
      let
        c = (builtins.getContext s).${p};
      in
      {
        path = normalise p;
      }
      // lib.optionalAttrs (c.path or false) { kind = "path"; }
      // lib.optionalAttrs (c ? outputs) {
        kind = "outputs";
        inherit (c) outputs;
      }
      // lib.optionalAttrs (c.allOutputs or false) { kind = "allOutputs"; }
    ) (builtins.attrNames (builtins.getContext s));

  # The attributes of a derivation that the builder contract is about, as `derivation`
  # received them (a null `checkpointBase` is dropped by __ignoreNulls: reported absent).
  describe =
    drv:
    let
      a = drv.drvAttrs;
    in
    normalise {
      inherit (a) builder args outputs;
      checkpointBash = a.checkpointBash or null;
      checkpointBase = a.checkpointBase or null;
      defaultOutput = drv.outputName;
    }
    // lib.optionalAttrs ((a.checkpointBase or null) != null) {
      checkpointBaseContext = contextOf a.checkpointBase;
    };

  # Whether evaluating v (deeply) throws or fails an assertion.
  fails = v: !(builtins.tryEval (builtins.deepSeq v v)).success;

  flakeOutputs =
    let
      flake = import (repo + "/flake.nix");
      nixpkgs = {
        outPath = stubPath;
        lib = import ./stub-nixpkgs/lib.nix;
      };
      self = flake.outputs { inherit self nixpkgs; } // {
        outPath = repo;
      };
    in
    self;
in
{
  inherit
    lib
    repo
    overlay
    pkgsWith
    normalise
    contextOf
    describe
    fails
    flakeOutputs
    ;

  # The stub package set with the overlay, and with the overlay plus the stdenv swap.
  pkgs = pkgsWith { overlays = [ overlay ]; };
  swapped = pkgsWith {
    overlays = [
      overlay
      (final: prev: { stdenv = final.withCheckpoints prev.stdenv; })
    ];
  };
}
