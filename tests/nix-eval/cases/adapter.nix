# withCheckpoints on the stub stdenv: what it does to each kind of derivation.
let
  h = import ../harness.nix;
  inherit (h) pkgs describe;
  stdenv = pkgs.withCheckpoints pkgs.stdenv;
  mk = attrs: stdenv.mkDerivation ({ name = "t"; } // attrs);
in
{
  # A generic build: our binary, stock args, a checkpoint output after `out`.
  generic = describe (mk { });
  checkpointBashIsStdenvShell = (mk { }).drvAttrs.checkpointBash == pkgs.stdenv.shell;

  # Original outputs first, in order; the first stays the default output.
  multiOutput = describe (mk {
    outputs = [
      "bin"
      "out"
      "dev"
    ];
  });

  # The fixed-point form, then a user's overrideAttrs: still adapted, the user's change kept.
  finalAttrs = describe (
    (stdenv.mkDerivation (finalAttrs: {
      pname = "fp";
      version = "1";
      outputs = [
        "out"
        "man"
      ];
    })).overrideAttrs
      (prev: {
        outputs = prev.outputs ++ [ "doc" ];
      })
  );

  # Adapting twice is adapting once (the second wraps the first's mkDerivation).
  twice = describe ((pkgs.withCheckpoints stdenv).mkDerivation { name = "t"; });

  # A custom builder script stays in args (checkpoint-builder hands it to bash); no
  # checkpoint output, since nothing would write it.
  customBuilder = describe (mk { builder = ../custom-builder.sh; });
  customArgs = describe (mk {
    args = [
      "-c"
      "echo hi > $out"
    ];
  });

  # buildCommand derivations (runCommand) are generic builds: default-builder.sh runs
  # genericBuild, which runs the command.
  buildCommand = describe (mk { buildCommand = "touch $out"; });

  # Left alone entirely.
  fixedOutput = describe (mk {
    outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    outputHashMode = "flat";
  });
  dontCheckpoint = describe (mk { dontCheckpoint = true; });
  foreignRealBuilder = describe (mk { realBuilder = "/some/other/builder"; });

  # Reference checks would apply to the checkpoint output too: builder swapped, no output.
  referenceChecks = describe (mk { disallowedReferences = [ ]; });

  # The stdenv derivation itself is unchanged; only mkDerivation differs.
  sameStdenvDerivation = stdenv.outPath == pkgs.stdenv.outPath;
}
