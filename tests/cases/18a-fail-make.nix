# buildPhase fails inside make: the build fails with make's status 2.
{ mkDrv, ... }:
mkDrv {
  name = "case-18a";
  src = ./src/failing-make;
  installPhase = "mkdir -p $out";
}
