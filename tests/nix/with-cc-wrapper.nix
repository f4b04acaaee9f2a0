# A test stdenv whose `mkDrv` puts the compiler wrapper (./cc-wrapper) first in every
# derivation's `nativeBuildInputs`, so compiles and links see NIX_CFLAGS_COMPILE,
# NIX_CFLAGS_LINK and NIX_LDFLAGS as in a nixpkgs build. Used by harness.nix and
# tests/projects/default.nix. A stdenv that sets `testCcWrapper = false` (tests/stdenv: it
# has no strip hook, see tests/projects/README.md) is returned as it is; shared/realstdenv
# gets the wrapper. Adding it to a derivation that has it already changes nothing.
{ stdenv, ccWrapper ? import ./cc-wrapper { } }:
if !(stdenv.testCcWrapper or true) then stdenv else
stdenv // {
  inherit ccWrapper;
  mkDrv = attrs:
    let inputs = attrs.nativeBuildInputs or [ ]; in
    stdenv.mkDrv (attrs // {
      nativeBuildInputs = (if builtins.elem ccWrapper inputs then [ ] else [ ccWrapper ]) ++ inputs;
    });
}
