# setSourceRoot chooses the source root (runOneHook); the archive holds two
# top-level directories, which would otherwise be an error.
{ mkDrv, ... }:
mkDrv {
  name = "case-07b";
  src = import ./lib/tarball.nix {
    name = "two-dirs.tar.gz";
    tree = ''
      mkdir -p first/inner second
      echo one >first/inner/file
      echo two >second/file
    '';
  };
  setSourceRoot = ''sourceRoot=$(echo first/*)'';
  nativeBuildInputs = [ ./lib/observe.sh ];
  installPhase = ''
    obs "cwd" pwd
    obsVars sourceRoot
  '';
}
