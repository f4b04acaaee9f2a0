# An invalid NIX_DEBUG fails setup with status 1.
{ mkDrv, ... }:
mkDrv {
  name = "case-27c";
  dontUnpack = true;
  NIX_DEBUG = "loud";
  installPhase = "mkdir -p $out";
}
