# RETURN, ERR and DEBUG traps set at setup time (by a setup hook, before
# genericBuild). Bash clears them on entry to genericBuild and restores them when
# it returns: phases do not see them, the DEBUG trap does not run before
# genericBuild's runPhase calls, the RETURN trap does not fire when genericBuild
# returns but does when the sourced builder script ends. A phase's own RETURN
# trap fires when genericBuild returns (case 24b).
{ mkDrv, ... }:
mkDrv {
  name = "case-39a";
  dontUnpack = true;
  nativeBuildInputs = [ ./lib/setup-time-traps.sh ];
  configurePhase = ''
    set +e
    trap -p >>"$NIX_BUILD_TOP/traps"
  '';
  buildPhase = ''
    echo "buildPhase sees: $(trap -p)" >>"$NIX_BUILD_TOP/traps"
    false
  '';
  installPhase = ''
    set -e
    mkdir -p $out
    trap 'cp "$NIX_BUILD_TOP/traps" $out/traps' EXIT
  '';
}
