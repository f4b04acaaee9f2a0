# buildCommand passed as a file (runCommand's way): sourced from
# buildCommandPath, same behaviour as 15a.
{ mkDrv, ... }:
mkDrv {
  name = "case-15b";
  nativeBuildInputs = [ ./lib/observe.sh ];
  passAsFile = [ "buildCommand" ];
  buildCommand = ''
    obsVars curPhase phases
    obsShellState
    obsExports
    obsChildEnv
  '';
}
