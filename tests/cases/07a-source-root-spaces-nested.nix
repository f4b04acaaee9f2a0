# An explicit nested sourceRoot whose components hold spaces: unpackPhase makes
# it writable and runPhase cds into it; later phases run there.
{ mkDrv, ... }:
mkDrv {
  name = "case-07a";
  src = import ./lib/tarball.nix {
    name = "spaces.tar.gz";
    tree = ''
      mkdir -p "dir with spaces/sub dir/deeper"
      echo hello >"dir with spaces/sub dir/file one"
      echo top >"dir with spaces/top file"
    '';
  };
  sourceRoot = "dir with spaces/sub dir";
  nativeBuildInputs = [ ./lib/observe.sh ];
  installPhase = ''
    obs "cwd" pwd
    obs "listing" ls -A
    obs "modes" stat -c '%A %n' . "file one" deeper
    obsVars sourceRoot SOURCE_DATE_EPOCH
  '';
}
