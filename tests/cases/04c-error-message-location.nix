# Bash's own error message inside phase code names the file and line where the
# enclosing function (runPhase) was defined. Stock: `$stdenv/setup: line N`; the
# builder defines functions from its restore file, so the location differs. A
# documented divergence (docs/state-carry.md), reported by the test, not failed.
{ mkDrv, ... }:
mkDrv {
  name = "case-04c";
  dontUnpack = true;
  buildPhase = ''
    declare -gr frozen=ice
  '';
  installPhase = ''
    mkdir -p $out
    (frozen=melted) 2>>"$out/readonly-error" || echo "status $?" >>"$out/readonly-error"
  '';
}
