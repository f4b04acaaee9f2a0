# Custom phase lists as arrays under structured attrs.
{ mkDrv, ... }:
mkDrv {
  name = "case-10b";
  __structuredAttrs = true;
  dontUnpack = true;
  prePhases = [ "firstPhase" "secondPhase" ];
  preInstallPhases = [ "beforeInstallPhase" ];
  postPhases = [ "lastPhase" "veryLastPhase" ];
  firstPhase = ''echo first >>"$NIX_BUILD_TOP/ran"'';
  secondPhase = ''echo second >>"$NIX_BUILD_TOP/ran"'';
  beforeInstallPhase = ''echo beforeInstall >>"$NIX_BUILD_TOP/ran"'';
  installPhase = ''mkdir -p $out; echo install >>"$NIX_BUILD_TOP/ran"'';
  lastPhase = ''echo last >>"$NIX_BUILD_TOP/ran"'';
  veryLastPhase = ''
    cp "$NIX_BUILD_TOP/ran" $out/ran
    declare -p phases prePhases postPhases >$out/lists
  '';
}
