# A background job started in one phase and waited for in another, $$ saved in
# one phase and compared in a later one, and $$ compared with 1.  In stock, bash
# is the sandbox's PID 1; here the builder is, and bash its child: this case
# documents that divergence (the conformance test reports it, it does not fail
# on it).  42-one-process-across-phases checks the rest against stock.
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
