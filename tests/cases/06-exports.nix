# `export A` in one phase is seen by a child process in the next; unexported
# variables are not; `export -n` sticks; nothing is exported that stock does not
# export (prefix, sourceRoot, outputDev stay shell-only).
{ mkDrv, ... }:
mkDrv {
  name = "case-06";
  src = ./src/tiny;
  nativeBuildInputs = [ ./lib/observe.sh ];
  configurePhase = ''
    export A="exported in configure"
    B="plain in configure"
    export C=later-unexported
    declare -gx D=declared-exported
  '';
  buildPhase = ''
    export -n C
    mkdir -p $out
    obs "child sees" bash -c 'echo "A=''${A-unset} B=''${B-unset} C=''${C-unset} D=''${D-unset}"'
  '';
  installPhase = ''
    obsExports
    obsChildEnv
    obsVars prefix sourceRoot outputDev outputBin A B C D
    obs "dollar zero" echo "$0"
  '';
}
