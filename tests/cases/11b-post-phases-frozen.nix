# postPhases unset and phases set by an early phase of the default list: the
# running list still ends with the original postPhases.
{ mkDrv, ... }:
mkDrv {
  name = "case-11b";
  dontUnpack = true;
  postPhases = "lastPhase";
  preConfigure = ''
    unset postPhases
    phases="installPhase"
    preInstallPhases="neverRunPhase"
  '';
  neverRunPhase = "exit 9";
  installPhase = ''mkdir -p $out; echo install >>$out/ran'';
  lastPhase = ''
    echo "last ran; postPhases=''${postPhases-unset} phases=$phases" >>$out/ran
  '';
}
