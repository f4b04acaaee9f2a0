# The flake's outputs, evaluated with the stub as its nixpkgs input: what each output
# holds, and that every check (VM tests included) evaluates to a derivation.
let
  h = import ../harness.nix;
  inherit (h) lib normalise flakeOutputs;
  f = flakeOutputs;
  perSystem = output: builtins.attrNames f.${output};
  x86 = output: f.${output}.x86_64-linux;
in
{
  systems = lib.genAttrs [
    "packages"
    "apps"
    "devShells"
    "formatter"
    "checks"
  ] perSystem;

  packages = builtins.attrNames (x86 "packages");
  defaultIsTheBuilder = (x86 "packages").default.drvPath == (x86 "packages").rustCheckpointBuilder.drvPath;

  apps = builtins.mapAttrs (_: app: normalise {
    inherit (app) type program;
    description = app.meta.description;
  }) (x86 "apps");

  devShell = (x86 "devShells").default.name;
  formatter = (x86 "formatter").name;

  # Every check instantiates (forcing the VM tests' scripts and node modules too).
  checks = builtins.mapAttrs (_: c: normalise c.name) (x86 "checks");
  checksInstantiate = builtins.all (c: builtins.isString c.drvPath) (builtins.attrValues (x86 "checks"));
  vmTestNodes = builtins.mapAttrs (_: c: c.drvAttrs.nodes) (
    lib.filterAttrs (n: _: lib.hasPrefix "vm-" n) (x86 "checks")
  );
  vmTestNodesEvaluate = builtins.all (c: c.drvAttrs.nodesEvaluated) (
    builtins.attrValues (lib.filterAttrs (n: _: lib.hasPrefix "vm-" n) (x86 "checks"))
  );

  overlay = builtins.typeOf f.overlays.default;
  lib = builtins.attrNames f.lib;
}
