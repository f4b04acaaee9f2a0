# A background job started in one phase and waited for in another, and $$
# saved in one phase and compared in a later one.  Process identity cannot be
# carried between processes: this case documents the divergence (the
# conformance test reports it, it does not fail on it).
{ mkDrv, ... }:
mkDrv {
  name = "case-31";
  dontUnpack = true;
  buildPhase = ''
    savedPid=$$
    (sleep 0.2; echo "background job done" >"$NIX_BUILD_TOP/bg") &
    bgJob=$!
  '';
  installPhase = ''
    mkdir -p $out
    status=0
    wait "$bgJob" 2>/dev/null || status=$?
    echo "wait status: $status" >$out/state
    if [[ $savedPid == "$$" ]]; then echo "same \$\$"; else echo "different \$\$"; fi >>$out/state
    if [[ $$ == 1 ]]; then echo "\$\$ is 1 (PID 1 in the sandbox)"; else echo "\$\$ is not 1"; fi >>$out/state
    sleep 0.3
    cat "$NIX_BUILD_TOP/bg" >>$out/state
  '';
}
