# An archive yielding two directories and no sourceRoot: unpackPhase fails (exit 1).
{ mkDrv, ... }:
mkDrv {
  name = "case-07c";
  src = import ./lib/tarball.nix {
    name = "two-dirs.tar.gz";
    tree = ''
      mkdir -p first/inner second
      echo one >first/inner/file
      echo two >second/file
    '';
  };
  installPhase = "mkdir $out";
}
