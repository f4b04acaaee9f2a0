# installPhase calls a function an earlier phase defined, and a command in it fails
# under errexit: the build fails with status 1, and everything the failing phase prints
# (its own output and bash's messages while the shell unwinds the function frames) is
# what stock prints, up to the file and line bash names (case 04c). Bash 5.2 before the
# upstream fix prints one `pop_var_context` line per function frame here, with the stock
# builder as with ours; a bash with the fix prints none in either.
{ mkDrv, ... }:
mkDrv {
  name = "case-18d";
  dontUnpack = true;
  buildPhase = ''
    failingStep() {
      echo "failingStep runs in $curPhase"
      false
      echo "not reached"
    }
  '';
  installPhase = ''
    mkdir -p $out
    failingStep
  '';
}
