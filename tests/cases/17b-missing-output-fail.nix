# A declared output that the build never creates: the builder exits 0 and Nix
# fails the build ("failed to produce output path").
{ mkDrv, ... }:
mkDrv {
  name = "case-17b";
  outputs = [ "out" "extra" ];
  dontUnpack = true;
  installPhase = "mkdir -p $out";
}
