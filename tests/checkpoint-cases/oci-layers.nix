# The C build of c-build.nix (src/c-build) shaped for tests/oci.rs: every kind of
# entry an OCI layer must carry, and changes that only stacked layers express.
#
# buildPhase (postBuild) adds a symlink, a hardlink (prog.hardlink), a fifo, an
# executable script, a read-only directory, and `doomed.txt` plus `scratch/` that
# installPhase deletes again (whiteouts in the install layer). installPhase also
# links prog a third time (a hardlink group that grows in a later layer), rewrites
# a file of buildPhase, and installs into $out with a symlink there. No xattrs:
# Nix's seccomp filter makes setxattr fail with ENOTSUP in the sandbox (the unit
# tests of builder/src/oci cover them). Real mtimes: never compared with a stock
# build.
{ mkDrv, ... }:
mkDrv {
  name = "checkpoint-oci-layers";
  src = ./src/c-build;
  outputs = [ "out" "checkpoint" ];
  configurePhase = ''
    runHook preConfigure
    printf '#define GREETING "%s"\n#define EXTRA %d\n' "hello from the oci case" 0 >config.h
    runHook postConfigure
  '';
  postBuild = ''
    ln -s prog link-to-prog
    ln prog prog.hardlink
    mkfifo a-fifo
    printf '#!/bin/sh\necho run\n' >run.sh
    chmod 0755 run.sh
    mkdir read-only-dir
    echo inside >read-only-dir/inside.txt
    chmod 0555 read-only-dir
    echo "as built" >rewritten.txt
    echo "deleted by installPhase" >doomed.txt
    mkdir -p scratch/deeper
    echo a >scratch/a.txt
    echo b >scratch/deeper/b.txt
  '';
  installPhase = ''
    runHook preInstall
    make install PREFIX="$out"
    rm doomed.txt
    rm -r scratch
    ln prog prog.third-link
    echo "as installed" >rewritten.txt
    mkdir -p "$out/share"
    echo "installed" >"$out/share/note.txt"
    ln -s ../bin/prog "$out/share/prog-link"
    runHook postInstall
  '';
}
