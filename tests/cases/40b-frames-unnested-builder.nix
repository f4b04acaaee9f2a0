# The older `bash -e default-builder.sh` form calls genericBuild at the top level:
# FUNCNAME has no `source` frame, xtrace one `+` fewer, and a phase's RETURN trap
# fires when genericBuild returns but there is no sourced script to end.
{ mkDrv, ... }:
mkDrv {
  name = "case-40b";
  dontUnpack = true;
  args = [ "-e" ./lib/unnested-builder.sh ];
  configurePhase = ''
    trap 'echo "RETURN trap in ''${FUNCNAME[0]-top}" >>"$NIX_BUILD_TOP/frames"' RETURN
  '';
  buildPhase = ''
    echo "build text: ''${FUNCNAME[*]}" >>"$NIX_BUILD_TOP/frames"
    exec 9>>"$NIX_BUILD_TOP/frames"
    BASH_XTRACEFD=9
    set -x
    x=$(echo sub)
    set +x
    unset BASH_XTRACEFD
  '';
  installPhase = ''
    mkdir -p $out
    trap 'cp "$NIX_BUILD_TOP/frames" $out/frames' EXIT
  '';
}
