# `set -u` left by a phase: a later undefined read fails the build.
{ mkDrv, ... }:
mkDrv {
  name = "case-21b";
  dontUnpack = true;
  configurePhase = "set -u";
  buildPhase = ''echo "value: $undefinedAfterSetU"'';
  installPhase = "mkdir -p $out";
}
