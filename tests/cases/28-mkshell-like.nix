# A mkShell-like derivation: its output is the `export` listing of one phase, so
# the exported set, SHLVL, OLDPWD and PWD must be byte-identical.
{ mkDrv, ... }:
mkDrv {
  name = "case-28";
  phases = [ "buildPhase" ];
  nativeBuildInputs = [ ./lib/observe.sh ];
  buildPhase = ''
    {
      echo "recorded environment of a mkShell-like derivation"
      export | grep -v '^declare -x builder='
    } >>"$out"
  '';
}
