# A RETURN trap set by a phase and left until the end: it fires when the phase's
# runPhase returns, again when genericBuild returns after the last phase (the trap
# was set while genericBuild ran), and when the sourced builder script ends.
{ mkDrv, ... }:
mkDrv {
  name = "case-24b";
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
