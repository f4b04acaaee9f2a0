# A small deterministic .tar.gz made by a raw derivation (not mkDrv, so the
# stock and the checkpoint-builder builds of a case unpack the same store path).
# `tree` is bash run in an empty directory; everything it creates is archived
# with mtime 2001-09-09 (1000000000), owner 0 and sorted names.
{ name, tree, system ? builtins.currentSystem }:
derivation {
  inherit name system;
  builder = "/bin/bash";
  args = [
    "-e"
    "-c"
    ''
      export PATH=/usr/bin
      mkdir "$TMPDIR/tree"
      cd "$TMPDIR/tree"
      ${tree}
      tar --sort=name --mtime=@1000000000 --owner=0 --group=0 --numeric-owner \
        --format=gnu -cf - . | gzip -n >"$out"
    ''
  ];
}
