# Traps set by a phase persist: ERR set in configurePhase, an EXIT trap set in
# installPhase replaces exitHandler (so exitHook does not run). RETURN traps: case 24b.
{ mkDrv, ... }:
mkDrv {
  name = "case-24";
  dontUnpack = true;
  configurePhase = ''
    trap 'echo "ERR trap: status $?" >>"$NIX_BUILD_TOP/traps"' ERR
  '';
  buildPhase = ''
    helper() { return 0; }
    helper
    set +e
    false
    set -e
    trap -p >>"$NIX_BUILD_TOP/traps"
  '';
  installPhase = ''
    mkdir -p $out
    trap 'cp "$NIX_BUILD_TOP/traps" $out/traps; echo "custom EXIT trap" >>$out/traps' EXIT
  '';
  exitHook = ''echo "exitHook ran" >>$out/traps'';
}
