# `umask 077` in preBuild affects files made in installPhase and the modes
# recorded inside a tarball; a lowered soft ulimit is kept.
{ mkDrv, ... }:
mkDrv {
  name = "case-23";
  dontUnpack = true;
  preBuild = ''
    umask 077
    ulimit -S -n 200
  '';
  installPhase = ''
    mkdir -p $out/tree/sub
    echo data >$out/tree/sub/file
    echo "umask $(umask) nofile $(ulimit -S -n)" >$out/state
    stat -c '%a %n' $out/tree $out/tree/sub $out/tree/sub/file | sed "s|$out|OUT|" >>$out/state
    tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner -C $out -cf $out/tree.tar tree
    tar -tvf $out/tree.tar >>$out/state
  '';
}
