# Custom phases in every list (prePhases ... postPhases) as strings, given as
# variables (eval'd text) and as functions (defined by preHook).
{ mkDrv, ... }:
mkDrv {
  name = "case-10a";
  dontUnpack = true;
  preHook = ''
    functionPhase() { echo "functionPhase ran in $curPhase" >>"$NIX_BUILD_TOP/ran"; }
  '';
  prePhases = "firstPhase";
  preConfigurePhases = "functionPhase";
  preBuildPhases = "beforeBuildPhase";
  preInstallPhases = "beforeInstallPhase";
  preFixupPhases = "beforeFixupPhase";
  preDistPhases = "beforeDistPhase";
  postPhases = "lastPhase";
  firstPhase = ''echo "first $1" >>"$NIX_BUILD_TOP/ran"'';
  beforeBuildPhase = ''echo "beforeBuild $curPhase" >>"$NIX_BUILD_TOP/ran"'';
  beforeInstallPhase = ''echo beforeInstall >>"$NIX_BUILD_TOP/ran"'';
  beforeFixupPhase = ''echo beforeFixup >>"$NIX_BUILD_TOP/ran"'';
  beforeDistPhase = ''echo beforeDist >>"$NIX_BUILD_TOP/ran"'';
  installPhase = ''mkdir -p $out; echo install >>"$NIX_BUILD_TOP/ran"'';
  lastPhase = ''
    echo last >>"$NIX_BUILD_TOP/ran"
    cp "$NIX_BUILD_TOP/ran" $out/ran
    echo "$phases" >$out/phases
  '';
}
