# NIX_DEBUG=6 turns xtrace on in setup. The depth of xtrace's `+` prefix inside
# phase code (phase text eval'd by runPhase, a phase function, a function from an
# earlier phase, a command substitution, eval) is stock's: runPhase runs inside
# genericBuild, inside the sourced builder script. BASH_XTRACEFD sends one
# phase's trace lines to a file the NAR comparison sees.
{ mkDrv, ... }:
mkDrv {
  name = "case-38a";
  dontUnpack = true;
  NIX_DEBUG = "6";
  preInstallPhases = [ "tracedPhase" ];
  configurePhase = ''
    helper() { echo "helper $1"; }
    tracedPhase() {
      exec 9>>"$NIX_BUILD_TOP/trace"
      BASH_XTRACEFD=9
      helper function
      unset BASH_XTRACEFD
    }
  '';
  buildPhase = ''
    exec 9>>"$NIX_BUILD_TOP/trace"
    BASH_XTRACEFD=9
    helper text
    x=$(echo sub)
    eval 'echo "ev $x"'
    unset BASH_XTRACEFD
  '';
  installPhase = ''
    mkdir -p $out
    cp "$NIX_BUILD_TOP/trace" $out/trace
  '';
}
