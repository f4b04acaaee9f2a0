# Unset vs declared-but-unset vs empty, seen later with ${v+x}; a scalar assigned
# to an array sets element 0 only; `unset` in a later phase sticks.
{ mkDrv, ... }:
mkDrv {
  name = "case-05";
  dontUnpack = true;
  nativeBuildInputs = [ ./lib/observe.sh ];
  configurePhase = ''
    declare -g declaredOnly
    declare -ga declaredArray
    emptyOne=""
    arr=(x y z)
    toBeUnset=1
    declare -gx exportedNoValue
  '';
  buildPhase = ''
    arr=scalar
    unset toBeUnset
  '';
  installPhase = ''
    mkdir -p $out
    for v in declaredOnly declaredArray emptyOne toBeUnset neverSet exportedNoValue; do
      echo "$v: set=[''${!v+x}] value=[''${!v-default}]" >>$out/states
    done
    obsVars declaredOnly declaredArray emptyOne arr exportedNoValue toBeUnset
    obs "child sees exportedNoValue" bash -c 'echo "[''${exportedNoValue+set}]"'
  '';
}
