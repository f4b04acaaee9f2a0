# Neither src nor srcs: unpackPhase fails with exit 1.
{ mkDrv, ... }:
mkDrv {
  name = "case-08b";
  installPhase = "mkdir $out";
}
