# FUNCNAME inside phase code: phase text (eval'd by runPhase), a phase function, a
# hook function run by runHook, a function from an earlier phase. Stock runs
# runPhase from genericBuild, inside the sourced builder script (`source` frame).
{ mkDrv, ... }:
mkDrv {
  name = "case-40";
  dontUnpack = true;
  preInstallPhases = [ "framesPhase" ];
  configurePhase = ''
    frames() { echo "$1: ''${FUNCNAME[*]} (''${#BASH_LINENO[@]} line entries)" >>"$NIX_BUILD_TOP/frames"; }
    framesPhase() { frames "phase function"; }
    myPreInstall() { frames "hook function"; }
    preInstallHooks+=(myPreInstall)
    frames "configure text"
  '';
  buildPhase = ''
    echo "build text: ''${FUNCNAME[*]}" >>"$NIX_BUILD_TOP/frames"
    frames "build text via function"
  '';
  installPhase = ''
    runHook preInstall
    mkdir -p $out
    cp "$NIX_BUILD_TOP/frames" $out/frames
  '';
}
