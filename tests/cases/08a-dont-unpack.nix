# dontUnpack: every phase runs in the build top.
{ mkDrv, ... }:
mkDrv {
  name = "case-08a";
  dontUnpack = true;
  nativeBuildInputs = [ ./lib/observe.sh ];
  prePatch = ''pwd >>"$TMPDIR/cwds"'';
  preConfigure = ''pwd >>"$TMPDIR/cwds"'';
  preBuild = ''pwd >>"$TMPDIR/cwds"'';
  installPhase = ''
    pwd >>"$TMPDIR/cwds"
    mkdir -p $out
    cp "$TMPDIR/cwds" $out/cwds
    obsVars sourceRoot srcs
  '';
  postFixup = ''pwd >>"$out/cwds"'';
}
