# Explicit `phases`, changed and unset by the first phase: the running list,
# split before the first phase, is unchanged.
{ mkDrv, ... }:
mkDrv {
  name = "case-11a";
  phases = [ "firstPhase" "secondPhase" "installPhase" "lastPhase" ];
  firstPhase = ''
    phases="installPhase"
    echo first >>"$NIX_BUILD_TOP/ran"
  '';
  secondPhase = ''
    unset phases
    echo second >>"$NIX_BUILD_TOP/ran"
  '';
  installPhase = ''mkdir -p $out; echo install >>"$NIX_BUILD_TOP/ran"'';
  lastPhase = ''
    echo "last; phases is ''${phases-unset}" >>"$NIX_BUILD_TOP/ran"
    cp "$NIX_BUILD_TOP/ran" $out/ran
  '';
}
