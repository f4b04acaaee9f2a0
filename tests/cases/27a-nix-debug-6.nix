# NIX_DEBUG=6: xtrace on from setup to the end; env-vars written with mode 0600.
{ mkDrv, ... }:
mkDrv {
  name = "case-27a";
  dontUnpack = true;
  NIX_DEBUG = "6";
  installPhase = ''
    mkdir -p $out
    echo "flags $-" >$out/state
    stat -c '%a' "$NIX_BUILD_TOP/env-vars" >>$out/state
    grep -v '^declare -x builder=' "$NIX_BUILD_TOP/env-vars" >$out/env-vars
  '';
}
