# Phase text sees $1/$*/$# = the phase name and runPhase's locals curPhase and
# startTime; `return 0` in unpackPhase text skips the cd into sourceRoot.
{ mkDrv, ... }:
mkDrv {
  name = "case-14";
  unpackPhase = ''
    mkdir -p src-dir
    sourceRoot=src-dir
    echo "unpack: 1=$1 #=$# curPhase=$curPhase star=$*" >>"$NIX_BUILD_TOP/seen"
    return 0
  '';
  buildPhase = ''
    echo "build: 1=$1 #=$# curPhase=$curPhase startTime-set=''${startTime:+yes}" >>"$NIX_BUILD_TOP/seen"
    echo "build cwd: $PWD" >>"$NIX_BUILD_TOP/seen"
  '';
  installPhase = ''
    mkdir -p $out
    cp "$NIX_BUILD_TOP/seen" $out/seen
    echo "install cwd: $PWD" >>$out/seen
  '';
}
