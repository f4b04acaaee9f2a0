# `exit 0` in an early phase ends the build successfully there (later phases
# skipped, exitHook runs).
{ mkDrv, ... }:
mkDrv {
  name = "case-19c";
  dontUnpack = true;
  configurePhase = ''
    mkdir -p $out
    echo configured >$out/ran
    exit 0
  '';
  buildPhase = ''echo built >>$out/ran'';
  exitHook = ''echo "exitHook after $curPhase" >>$out/ran'';
}
