# showBuildStats=1 (times printed at exit, buildTimes set) and noDumpEnvVars=1
# (no env-vars file).
{ mkDrv, ... }:
mkDrv {
  name = "case-27d";
  dontUnpack = true;
  showBuildStats = true;
  noDumpEnvVars = true;
  installPhase = ''
    mkdir -p $out
    if [[ -e "$NIX_BUILD_TOP/env-vars" ]]; then echo "env-vars exists"; else echo "no env-vars"; fi >$out/state
  '';
  exitHook = ''echo "buildTimes has ''${#buildTimes[@]} entries" >>$out/state'';
}
