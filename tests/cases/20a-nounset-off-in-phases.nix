# Phases run without nounset: reading an undefined variable succeeds.
{ mkDrv, ... }:
mkDrv {
  name = "case-20a";
  dontUnpack = true;
  installPhase = ''
    mkdir -p $out
    echo "undefined reads as [$thisVariableIsNeverDefined]" >$out/read
    echo "flags $-" >>$out/read
  '';
}
