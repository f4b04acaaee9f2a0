# `exit 7` in buildPhase: the build fails with status 7.
{ mkDrv, ... }:
mkDrv {
  name = "case-18b";
  dontUnpack = true;
  buildPhase = ''
    echo "leaving with 7"
    exit 7
  '';
  installPhase = "mkdir -p $out";
}
