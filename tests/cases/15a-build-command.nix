# buildCommand: one eval, no phases, no headers, no setPhase lines.
{ mkDrv, ... }:
mkDrv {
  name = "case-15a";
  nativeBuildInputs = [ ./lib/observe.sh ];
  buildCommand = ''
    obsVars curPhase phases
    obsShellState
    obsExports
    obsChildEnv
  '';
}
