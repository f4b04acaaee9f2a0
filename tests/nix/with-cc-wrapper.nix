# A test stdenv whose `mkDrv` puts the compiler wrapper (./cc-wrapper) first in every
# derivation's `nativeBuildInputs`, so compiles and links see NIX_CFLAGS_COMPILE,
# NIX_CFLAGS_LINK and NIX_LDFLAGS as in a nixpkgs build, on either stdenv under test
# (tests/stdenv or shared/realstdenv). Used by harness.nix and tests/projects/default.nix.
{ stdenv, ccWrapper ? import ./cc-wrapper { } }:
stdenv // {
  inherit ccWrapper;
  mkDrv = attrs: stdenv.mkDrv (attrs // {
    nativeBuildInputs = [ ccWrapper ] ++ (attrs.nativeBuildInputs or [ ]);
  });
}
