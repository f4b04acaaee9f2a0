# BASH_COMPAT exists in a phase exactly when the build made it: absent at first,
# set by `shopt -s compat44` in buildPhase (bash records the level there), back
# to absent after `unset` in installPhase. The compat options follow it.
{ mkDrv, ... }:
mkDrv {
  name = "case-37a";
  dontUnpack = true;
  postPhases = [ "lastPhase" ];
  configurePhase = ''
    record() {
      { echo "== $curPhase"; if [[ -v BASH_COMPAT ]]; then declare -p BASH_COMPAT; else echo "BASH_COMPAT absent"; fi; shopt -p compat43 compat44 || true; } \
        >>"$NIX_BUILD_TOP/compat"
    }
    record
  '';
  buildPhase = ''
    record
    shopt -s compat44
    record
  '';
  installPhase = ''
    record
    unset BASH_COMPAT
    record
  '';
  lastPhase = ''
    record
    mkdir -p $out
    cp "$NIX_BUILD_TOP/compat" $out/compat
  '';
}
