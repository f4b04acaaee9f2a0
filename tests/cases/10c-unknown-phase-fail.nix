# A listed phase that is neither a variable nor a function: status 127.
{ mkDrv, ... }:
mkDrv {
  name = "case-10c";
  dontUnpack = true;
  installPhase = "mkdir -p $out";
  postPhases = "noSuchPhase";
}
