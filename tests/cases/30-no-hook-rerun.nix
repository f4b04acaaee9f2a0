# Setup runs once: one -frandom-seed (from the output path) in
# NIX_CFLAGS_COMPILE, one `-rpath $out/lib` in NIX_LDFLAGS, no duplicated hook
# array entries at fixup, SOURCE_DATE_EPOCH not reset.
{ mkDrv, ... }:
mkDrv {
  name = "case-30";
  src = ./src/tiny;
  nativeBuildInputs = [ ./lib/observe.sh ];
  installPhase = ''
    mkdir -p $out
  '';
  postFixup = ''
    seed=''${out##*/}
    seed=''${seed:0:10}
    obs "NIX_CFLAGS_COMPILE (seed replaced)" echo "''${NIX_CFLAGS_COMPILE//$seed/SEED-OF-OUT}"
    obs "NIX_LDFLAGS" echo "$NIX_LDFLAGS"
    obs "seed count" bash -c 'grep -o -- -frandom-seed <<<"$NIX_CFLAGS_COMPILE" | wc -l'
    obs "rpath count" bash -c 'grep -o -- -rpath <<<"$NIX_LDFLAGS" | wc -l'
    obsVars preConfigureHooks preFixupHooks fixupOutputHooks postFixupHooks postUnpackHooks \
      unpackCmdHooks SOURCE_DATE_EPOCH
  '';
}
