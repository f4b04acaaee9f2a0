# Pipefail is on in phases; _multioutPropagateDev (multiple outputs) turns it
# off and on again; a phase after fixup still has it.
{ mkDrv, ... }:
mkDrv {
  name = "case-22";
  outputs = [ "out" "dev" ];
  dontUnpack = true;
  installPhase = ''
    mkdir -p $out $dev
    if false | true; then echo "install: pipefail off"; else echo "install: pipefail on"; fi >>$out/pipefail
  '';
  postPhases = "afterFixupPhase";
  afterFixupPhase = ''
    if false | true; then echo "after fixup: pipefail off"; else echo "after fixup: pipefail on"; fi >>$out/pipefail
    cp $dev/nix-support/propagated-build-inputs $out/dev-propagated
  '';
}
