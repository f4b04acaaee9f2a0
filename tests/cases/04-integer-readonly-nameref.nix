# Global integer (-i: later assignments are arithmetic), readonly (-r: a later
# assignment still fails, with the same message) and nameref (-n: still a reference),
# plus -l/-u.
{ mkDrv, ... }:
mkDrv {
  name = "case-04";
  dontUnpack = true;
  nativeBuildInputs = [ ./lib/observe.sh ];
  buildPhase = ''
    declare -gi counter=5
    counter+=10
    declare -gr frozen=ice
    target=pointed
    declare -gn ref=target
    declare -gl lower=MiXeD
    declare -gu upper=abc
    declare -gix exportedInt=6*7
  '';
  installPhase = ''
    counter+=1+1
    obsVars counter frozen ref target lower upper exportedInt
    ref="assigned through ref"
    lower=AGAIN
    obsVars target lower
    # The message without bash's "FILE: line N: " prefix: where the enclosing function was
    # defined differs by design (case 04c records that divergence).
    (frozen=melted) 2>"$NIX_BUILD_TOP/ro.err" || echo "status $?" >>"$out/readonly-error"
    sed 's/^.*: line [0-9]*: //' "$NIX_BUILD_TOP/ro.err" >>"$out/readonly-error"
    obs "child sees exportedInt" bash -c 'echo "$exportedInt"'
  '';
}
