# The Nix side of checkpoint-builder: the `stdenv -> stdenv` adapter and the per-package
# functions. Pure functions of `lib` and of a way to find the builder binary; it builds
# nothing itself. The overlay (./default.nix) and the flake's `lib` (../lib) instantiate it.
# The contract with the binary is documented in ./API.md ("What the builder reads").
{
  lib,
  # system -> the checkpoint-builder package that runs on that system (the build platform
  # of the derivations it builds).
  builderFor,
}:
let
  inherit (lib)
    assertMsg
    concatStringsSep
    elem
    filter
    hasSuffix
    isDerivation
    ;

  # The output the builder writes its layers to.
  checkpointOutput = "checkpoint";

  builderExe = system: "${builderFor system}/bin/checkpoint-builder";

  # Any checkpoint-builder binary counts as ours (the overlay's, the flake's, an older one):
  # re-adapting a derivation replaces it.
  isCheckpointBuilder = exe: hasSuffix "/bin/checkpoint-builder" (toString exe);

  # Reference checks that Nix applies to every output when `__structuredAttrs` is off (and
  # that mkDerivation copies into every output's `outputChecks` when it is on). The
  # checkpoint references whatever the build directory did (compiler, sources, ...), so
  # such a derivation cannot get a checkpoint output.
  referenceChecks = [
    "allowedReferences"
    "allowedRequisites"
    "disallowedReferences"
    "disallowedRequisites"
  ];

  # How far a derivation, given its mkDerivation arguments, can be moved onto the builder:
  #   "none":    leave it as it is (opted out, fixed-output, someone else's realBuilder);
  #   "builder": run it with checkpoint-builder, which hands a custom builder script or
  #              custom args to bash unchanged, but add no checkpoint output (nothing
  #              would write it, or Nix would reject it);
  #   "full":    checkpoint-builder with a checkpoint output.
  # `why` says what stands in the way of "full" (null when nothing does).
  classify =
    attrs:
    let
      set = name: (attrs.${name} or null) != null;
      checks = filter set referenceChecks;
    in
    if attrs.dontCheckpoint or false then
      {
        level = "none";
        why = "it sets dontCheckpoint";
      }
    else if set "outputHash" then
      {
        level = "none";
        why = "it is a fixed-output derivation (those have exactly one output)";
      }
    else if set "realBuilder" && !isCheckpointBuilder attrs.realBuilder then
      {
        level = "none";
        why = "it sets its own realBuilder";
      }
    else if set "builder" then
      {
        level = "builder";
        why = "it has a custom builder script, which checkpoint-builder runs with bash unchanged";
      }
    else if attrs ? args then
      {
        level = "builder";
        why = "it has custom args, which checkpoint-builder hands to bash unchanged";
      }
    else if checks != [ ] then
      {
        level = "builder";
        why = "it sets ${concatStringsSep ", " checks}, which Nix would apply to the checkpoint output too";
      }
    else
      {
        level = "full";
        why = null;
      };

  # The attributes that run a derivation on checkpoint-builder. `realBuilder` (not `builder`:
  # in mkDerivation that is the script bash runs) picks the executable; `args` stay as
  # mkDerivation makes them, so the binary sees the stock `-e source-stdenv.sh <script>`.
  builderAttrs =
    { system, shell }:
    {
      realBuilder = builderExe system;
      checkpointBash = shell;
    };

  # `outputs` with the checkpoint output last: the original outputs keep their order, so
  # the first one (usually `out`) stays the default output. Idempotent.
  withCheckpointOutput =
    attrs:
    let
      outputs = attrs.outputs or [ "out" ];
    in
    {
      outputs = if elem checkpointOutput outputs then outputs else outputs ++ [ checkpointOutput ];
    };

  # What withCheckpoints adds to one derivation's mkDerivation arguments.
  adapt =
    { system, shell }:
    attrs:
    let
      c = classify attrs;
    in
    if c.level == "none" then
      { }
    else
      builderAttrs { inherit system shell; }
      // lib.optionalAttrs (c.level == "full") (withCheckpointOutput attrs);

  # A store path as a derivation input without evaluation-time impurity.
  #
  # A string that already carries context (a derivation output, `"${drv.checkpoint}"`) is
  # returned as it is. A plain string or path naming a store path (read from a file, say)
  # gets that path as its context, so the derivation lists it in `inputSrcs` and Nix puts
  # it into the sandbox. `builtins.storePath` does the same but is refused in pure
  # evaluation (flakes); `builtins.appendContext` is not. Either way Nix makes the path
  # valid as soon as the context is made (read-only evaluation, `nix-instantiate --eval`,
  # aside): already in the store, or substituted right then from a configured
  # substituter; otherwise evaluation fails with "path '...' does not exist and cannot be
  # created".
  storePathInput =
    what:
    let
      path = toString what;
      # nix32 digits: 0-9 and a-z without e, o, t, u.
      valid = builtins.match "${builtins.storeDir}/[0-9a-df-np-sv-z]{32}-[-+._?=0-9a-zA-Z]+" path;
    in
    if builtins.isString what && builtins.hasContext what then
      what
    else if valid == null then
      throw "checkpoint-builder: '${path}' is not a store path (expected ${builtins.storeDir}/<hash>-<name>)"
    else
      builtins.appendContext path { ${path} = { path = true; }; };

  # What `checkpointBase` is set to for a given checkpoint argument (see API.md).
  checkpointBaseOf =
    checkpoint:
    if checkpoint == null then
      null
    else if isDerivation checkpoint then
      if (checkpoint.outputName or null) == checkpointOutput then
        "${checkpoint}"
      else if checkpoint ? ${checkpointOutput} then
        "${checkpoint.${checkpointOutput}}"
      else
        throw "checkpoint-builder: ${checkpoint.name or "the derivation"} given as a checkpoint has no `${checkpointOutput}` output (build it with prepareCheckpointBuild or withCheckpoint)"
    else if builtins.isString checkpoint || builtins.isPath checkpoint then
      storePathInput checkpoint
    else
      throw "checkpoint-builder: a checkpoint must be null, a derivation with a `${checkpointOutput}` output, or a store path; got a ${builtins.typeOf checkpoint}";

  shellOf =
    drv:
    drv.stdenv.shell
      or (throw "checkpoint-builder: ${drv.name or "the derivation"} has no `stdenv.shell` (was it made by stdenv.mkDerivation?)");

in
rec {
  inherit checkpointOutput storePathInput;

  /**
    withCheckpoints :: stdenv -> stdenv

    A stdenv whose `mkDerivation` runs every derivation on checkpoint-builder and gives it
    a `checkpoint` output. See API.md.
  */
  withCheckpoints =
    stdenv:
    stdenv.override (old: {
      mkDerivationFromStdenv =
        stdenvSelf:
        let
          # The mkDerivation we wrap: an earlier adapter's when there is one (so adapters
          # compose), else the stdenv's own. The latter is bound to the original stdenv,
          # whose derivation is the same as `stdenvSelf`'s (only mkDerivation differs).
          mkDerivationSuper = (old.mkDerivationFromStdenv or (_: stdenv.mkDerivation)) stdenvSelf;
          shell = stdenvSelf.shell;
          system = stdenvSelf.buildPlatform.system;
        in
        fnOrAttrs: (mkDerivationSuper fnOrAttrs).overrideAttrs (adapt { inherit system shell; });
    });

  /**
    withCheckpoint :: derivation -> (null | derivation | string | path) -> derivation

    `drv` built with checkpoint-builder, producing a `checkpoint` output, reusing the
    layers of `checkpoint` (null: a full build). See API.md.
  */
  withCheckpoint =
    drv: checkpoint:
    assert assertMsg (drv ? overrideAttrs)
      "withCheckpoint: ${drv.name or "the argument"} has no overrideAttrs (was it made by stdenv.mkDerivation?)";
    drv.overrideAttrs (
      prev:
      let
        c = classify prev;
      in
      if c.level != "full" then
        throw "withCheckpoint: cannot give ${drv.name} a checkpoint: ${c.why}"
      else
        builderAttrs {
          inherit (drv) system;
          shell = shellOf drv;
        }
        // withCheckpointOutput prev
        // {
          # Null is dropped by mkDerivation (`__ignoreNulls`): a full build.
          checkpointBase = checkpointBaseOf checkpoint;
        }
    );

  /**
    prepareCheckpointBuild :: derivation -> derivation

    A full build of `drv` with checkpoint-builder that produces a checkpoint (its
    `checkpoint` output). Same role as nixpkgs' checkpointBuildTools.prepareCheckpointBuild.
  */
  prepareCheckpointBuild = drv: withCheckpoint drv null;

  /**
    mkCheckpointBuild :: derivation -> (derivation | string | path) -> derivation

    `drv` (usually a changed version of what `checkpoint` was built from) rebuilt
    incrementally from `checkpoint`. Same role as nixpkgs'
    checkpointBuildTools.mkCheckpointBuild.
  */
  mkCheckpointBuild =
    drv: checkpoint:
    assert assertMsg (
      checkpoint != null
    ) "mkCheckpointBuild: the checkpoint is null (use withCheckpoint for an optional one)";
    withCheckpoint drv checkpoint;
}
