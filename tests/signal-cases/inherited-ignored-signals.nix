# Built by tests/conformance.rs with nix-build started with SIGHUP, SIGINT and SIGQUIT
# ignored (as under `nohup`, or as a background job of a non-interactive shell): bash lists
# signals ignored on entry as `trap -- '' SIGHUP`, and every phase must see them ignored, as
# the stock builder's one bash does. Kept apart from tests/cases so that no other test builds
# this derivation without the ignored signals.
{ mkDrv, ... }:
mkDrv {
  name = "inherited-ignored-signals";
  dontUnpack = true;
  configurePhase = ''
    trap -p >"$NIX_BUILD_TOP/traps-configure"
  '';
  buildPhase = ''
    trap 'echo "ERR trap"' ERR
    trap -p >"$NIX_BUILD_TOP/traps-build"
  '';
  installPhase = ''
    mkdir -p $out
    cp "$NIX_BUILD_TOP"/traps-configure "$NIX_BUILD_TOP"/traps-build $out/
    trap -p >$out/traps-install
  '';
}
