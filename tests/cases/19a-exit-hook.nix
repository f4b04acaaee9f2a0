# On success exitHook runs exactly once, after the last phase.
{ mkDrv, ... }:
mkDrv {
  name = "case-19a";
  dontUnpack = true;
  installPhase = ''mkdir -p $out; echo install >>$out/order'';
  postPhases = "lastPhase";
  lastPhase = ''echo last >>$out/order'';
  exitHook = ''echo "exitHook: exitCode=$exitCode curPhase=$curPhase" >>$out/order'';
}
