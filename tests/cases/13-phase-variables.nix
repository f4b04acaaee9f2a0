# A phase variable set to "" runs the function (default buildPhase: no
# Makefile); a phase variable naming a function (installPhase=myInstall) runs it.
{ mkDrv, ... }:
mkDrv {
  name = "case-13";
  dontUnpack = true;
  preHook = ''
    myInstall() {
      mkdir -p $out
      echo "myInstall ran as $curPhase with args: $*" >>$out/ran
      cat "$NIX_BUILD_TOP/ran" >>$out/ran
    }
  '';
  buildPhase = "";
  preBuild = ''echo "preBuild from the default buildPhase" >>"$NIX_BUILD_TOP/ran"'';
  postBuild = ''echo "postBuild, foundMakefile=''${foundMakefile-unset}" >>"$NIX_BUILD_TOP/ran"'';
  installPhase = "myInstall";
}
