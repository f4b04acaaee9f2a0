# Phases that follow each other run in one process, as stock's loop runs them: `$$`
# saved in buildPhase equals installPhase's, and a background job started in
# buildPhase can be `wait`ed for in installPhase. (A build that restores a phase
# from a checkpoint starts the phase after the restore in a process of its own.)
{ mkDrv, ... }:
mkDrv {
  name = "case-42";
  dontUnpack = true;
  buildPhase = ''
    savedPid=$$
    (sleep 0.2; echo "background job done" >"$NIX_BUILD_TOP/bg") &
    bgJob=$!
  '';
  installPhase = ''
    mkdir -p $out
    status=0
    wait "$bgJob" || status=$?
    echo "wait status: $status" >$out/state
    if [[ $savedPid == "$$" ]]; then echo "same \$\$"; else echo "different \$\$"; fi >>$out/state
    jobs -p | wc -l >>$out/state
    cat "$NIX_BUILD_TOP/bg" >>$out/state
  '';
}
