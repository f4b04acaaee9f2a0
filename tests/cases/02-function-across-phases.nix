# A function defined in a preConfigure string hook is called in installPhase; a
# function defined by running another function becomes global; `export -f`
# reaches child processes.
{ mkDrv, ... }:
mkDrv {
  name = "case-02";
  dontUnpack = true;
  nativeBuildInputs = [ ./lib/observe.sh ];
  preConfigure = ''
    greet() { echo "greet in $curPhase with $# args: $*"; }
    defineInner() { inner() { echo "inner defined by defineInner"; }; }
    shout() { echo "SHOUT"; }
    export -f shout
  '';
  buildPhase = ''
    defineInner
  '';
  installPhase = ''
    obs "call greet" greet a "b c"
    obs "call inner" inner
    obs "declare -f greet" declare -f greet
    obs "child calls exported function" bash -c shout
    obsFunctions
    obsChildEnv
  '';
}
