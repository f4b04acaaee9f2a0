# A real C build (src/c-build: three sources, a header, a Makefile) with a
# `checkpoint` output, for the restore and shell tests of tests/checkpoint.rs.
#
# configurePhase generates config.h (so a source has a real mtime) and defines
# `countObjects`, a function the shell test calls. postBuild adds the kinds of
# entries a checkpoint must keep (a symlink, a dangling symlink, an empty
# directory, a read-only file, a read-only directory, a file with a space and
# one with `%` in its name, a hardlink, a fifo, a sparse file; the sandbox
# refuses setuid/setgid bits, a text file larger than the 4 MiB the snapshot streams) and
# records the source root's tree (lib/tree-listing.sh) into $out/tree-after-build.txt, and
# the source root relative to $NIX_BUILD_TOP into $out/source-root. Nothing touches the
# tree after that listing until the end of buildPhase. postInstall then overwrites bytes of
# the large file and of a small one in place: buildPhase's layer, stored while installPhase
# runs, must still hold what buildPhase left. The recording holds real mtimes, so `out` is
# not reproducible: this case is never compared with a stock build.
{ mkDrv, ... }:
mkDrv {
  name = "checkpoint-c-build";
  src = ./src/c-build;
  outputs = [ "out" "checkpoint" ];
  configurePhase = ''
    runHook preConfigure
    printf '#define GREETING "%s"\n#define EXTRA %d\n' "hello from the c-build case" 0 >config.h
    countObjects() {
      local o n=0
      for o in *.o; do
        if [[ -e $o ]]; then n=$((n + 1)); fi
      done
      echo "$n"
    }
    runHook postConfigure
  '';
  postBuild = ''
    mkdir empty-dir
    ln -s prog link-to-prog
    ln -s does-not-exist dangling-link
    echo "a space" >'file with space.txt'
    echo "a percent" >'100%.txt'
    echo "read only" >read-only.txt
    chmod 0444 read-only.txt
    mkdir read-only-dir
    echo inside >read-only-dir/inside.txt
    chmod 0555 read-only-dir
    ln prog prog.hardlink
    mkfifo a-fifo
    truncate -s 1M sparse.bin
    echo tail >>sparse.bin
    seq 1 700000 >large.txt
    mkdir -p "$out"
    echo "''${PWD#"$NIX_BUILD_TOP"/}" >"$out/source-root"
    bash ${./lib/tree-listing.sh} >"$out/tree-after-build.txt"
  '';
  installPhase = ''
    runHook preInstall
    make install PREFIX="$out"
    runHook postInstall
  '';
  postInstall = ''
    printf 'overwritten by postInstall' | dd of=large.txt bs=1 seek=1000 conv=notrunc status=none
    printf 'A' | dd of='file with space.txt' bs=1 conv=notrunc status=none
  '';
}
