# `exec >build.log 2>&1` in one phase redirects all later phases' output (the
# phase headers and the setPhase lines on fd 2 included).  A copy of the log
# pipe stays open on another fd: Nix treats EOF on the log pipe as the end of
# the build and kills the builder (signal 9) otherwise.
{ mkDrv, ... }:
mkDrv {
  name = "case-25";
  dontUnpack = true;
  configurePhase = ''
    exec {keepLogPipe}>&2
    exec >"$NIX_BUILD_TOP/build.log" 2>&1
    echo "configure output"
  '';
  buildPhase = ''echo "build output"; echo "build stderr" >&2'';
  installPhase = ''mkdir -p $out'';
  postPhases = "copyLogPhase";
  copyLogPhase = ''cp "$NIX_BUILD_TOP/build.log" $out/build.log'';
}
