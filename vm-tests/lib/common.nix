# What the VM tests share: the GNU hello variants, the closure that lets a VM build them
# with no network, a base node configuration and the Python helpers. Not a test itself:
# checks are the *.nix files directly in vm-tests/.
{ pkgs }:
let
  inherit (pkgs) lib;

  # The .drv file as a plain path: a dependency on the derivation, not on its outputs.
  drvFile = d: builtins.unsafeDiscardOutputDependency d.drvPath;
  plain = s: builtins.unsafeDiscardStringContext (toString s);
in
{
  hello = import ../../nix/hello-variants.nix {
    inherit (pkgs) hello prepareCheckpointBuild mkCheckpointBuild;
  };

  # A derivation's paths as a Python dict literal for the test script, without string
  # context, so the host builds none of them: the VM does.
  pyPaths =
    d:
    builtins.toJSON (
      {
        drv = plain d.drvPath;
        out = plain d.out.outPath;
      }
      // lib.optionalAttrs (d ? checkpoint) { checkpoint = plain d.checkpoint.outPath; }
    );

  # For system.extraDependencies: what a VM needs to build every derivation in `build`
  # without substituting anything: their .drv files (whose closure holds every input .drv
  # and source file) and the outputs of their inputs, which the inputDerivation of each of
  # `inputsOf` references (it dumps the derivation's environment). A checkpoint that one
  # of `build` reuses from another of them is built in the VM, not here.
  offlineDeps =
    { build, inputsOf }:
    [
      (pkgs.writeText "checkpoint-test-drvs" (lib.concatMapStringsSep "\n" drvFile build))
      pkgs.rustCheckpointBuilder
    ]
    ++ map (d: d.inputDerivation) inputsOf;

  # A NixOS machine that builds in the sandbox, offline.
  node =
    { lib, ... }:
    {
      virtualisation = {
        cores = 2;
        memorySize = 3072;
        diskSize = 8192;
        writableStoreUseTmpfs = false;
      };
      nix.settings = {
        sandbox = true;
        substituters = lib.mkForce [ ];
        experimental-features = [ "nix-command" ];
      };
    };

  helpers = builtins.readFile ./helpers.py;
}
