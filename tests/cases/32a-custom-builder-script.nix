# A custom `builder` script: the stock args become -e source-stdenv.sh SCRIPT,
# and the script (not default-builder.sh) drives the build.
{ mkDrv, ... }:
mkDrv {
  name = "case-32a";
  builder = ./lib/custom-builder.sh;
  buildPhase = ''echo "buildPhase from the custom builder" >>$out/custom'';
  installPhase = ''echo "installPhase, curPhase=$curPhase" >>$out/custom'';
}
