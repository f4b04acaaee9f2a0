# succeedOnFailure: a failing phase ends the build with exit 0 and
# $out/nix-support/failed holding the status.
{ mkDrv, ... }:
mkDrv {
  name = "case-19b";
  dontUnpack = true;
  succeedOnFailure = true;
  buildPhase = ''
    mkdir -p $out
    echo built >$out/built
    exit 3
  '';
}
