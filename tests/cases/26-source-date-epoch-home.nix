# SOURCE_DATE_EPOCH raised by the postUnpack hook (the tarball's files are from
# 2001) is unchanged in installPhase; HOME changed by a setup hook stays changed.
{ mkDrv, ... }:
mkDrv {
  name = "case-26";
  src = import ./lib/tarball.nix {
    name = "dated.tar.gz";
    tree = ''
      mkdir dated
      echo old >dated/file
    '';
  };
  nativeBuildInputs = [
    (builtins.toFile "writable-home-hook.sh" ''
      export HOME="$NIX_BUILD_TOP/home"
      mkdir -p "$HOME"
    '')
  ];
  installPhase = ''
    mkdir -p $out
    echo "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH" >$out/state
    echo "HOME=$HOME" >>$out/state
    cd ~
    echo "cd ~ -> $PWD" >>$out/state
    bash -c 'echo "child HOME=$HOME SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"' >>$out/state
  '';
}
