# failureHook runs once and sees a global set earlier in the failing phase, that
# phase's cwd and curPhase; exitHook does not run.  succeedOnFailure keeps the
# output so the observations are compared.
{ mkDrv, ... }:
mkDrv {
  name = "case-18c";
  src = ./src/tiny;
  succeedOnFailure = true;
  buildPhase = ''
    mkdir -p into/here
    cd into/here
    setInFailingPhase="set before the failure"
    false
    echo "not reached" >$out/not-reached
  '';
  failureHook = ''
    mkdir -p $out
    {
      echo "failureHook: curPhase=$curPhase exitCode=$exitCode"
      echo "global: ''${setInFailingPhase-unset}"
      echo "cwd: $PWD"
      echo "flags: $-"
    } >>$out/failure
  '';
  exitHook = ''echo "exitHook ran" >>$out/failure'';
}
