# NIX_DEBUG=7: every log level written, xtrace on.
{ mkDrv, ... }:
mkDrv {
  name = "case-27b";
  dontUnpack = true;
  NIX_DEBUG = "7";
  installPhase = ''
    mkdir -p $out
    echo "flags $-" >$out/state
  '';
}
