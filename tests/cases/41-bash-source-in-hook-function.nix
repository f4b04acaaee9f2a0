# A setup hook's function reads BASH_SOURCE to find its own file (a hook looking
# for files beside itself). Phase processes cannot reproduce a function's
# defining file, so the builder runs such a build whole in one process
# (docs/state-carry.md) and the function names its hook, as in stock.
{ mkDrv, ... }:
mkDrv {
  name = "case-41";
  dontUnpack = true;
  nativeBuildInputs = [ ./lib/bash-source-hook.sh ];
  buildPhase = ''
    hookLocation >"$NIX_BUILD_TOP/where"
  '';
  installPhase = ''
    mkdir -p $out
    cp "$NIX_BUILD_TOP/where" $out/where
    hookLocation >>$out/where
  '';
}
