# Traps set by a phase persist: ERR and RETURN set in configurePhase, an EXIT
# trap set in installPhase replaces exitHandler (so exitHook does not run).
{ mkDrv, ... }:
mkDrv {
  name = "case-24";
  dontUnpack = true;
  configurePhase = ''
    trap 'echo "ERR trap: status $?" >>"$NIX_BUILD_TOP/traps"' ERR
    trap 'echo "RETURN trap in ''${FUNCNAME[0]-top}" >>"$NIX_BUILD_TOP/traps"' RETURN
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
