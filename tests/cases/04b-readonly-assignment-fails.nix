# Assigning to a variable made readonly in an earlier phase fails the build, as
# in one stock shell.
{ mkDrv, ... }:
mkDrv {
  name = "case-04b";
  dontUnpack = true;
  buildPhase = ''
    declare -gr frozen=ice
  '';
  installPhase = ''
    mkdir -p $out
    frozen=melted
    echo "not reached" >$out/reached
  '';
}
