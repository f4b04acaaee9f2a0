# Extra: patchPhase with a plain and a gzip-compressed patch, and patchFlags.
{ mkDrv, ... }:
let
  patchOne = builtins.toFile "one.patch" ''
    --- a/README
    +++ b/README
    @@ -1 +1,2 @@
     a tiny source tree
    +patched once
  '';
  patchTwo = derivation {
    name = "two.patch.gz";
    system = builtins.currentSystem;
    builder = "/bin/bash";
    args = [ "-e" "-c" ''
      printf '%s\n' '--- a/README' '+++ b/README' '@@ -1,2 +1,3 @@' ' a tiny source tree' ' patched once' '+patched twice' \
        | /usr/bin/gzip -n >"$out"
    '' ];
  };
in
mkDrv {
  name = "case-34";
  src = ./src/tiny;
  patches = [ patchOne patchTwo ];
  patchFlags = [ "-p1" "--no-backup-if-mismatch" ];
  installPhase = ''
    mkdir -p $out
    cp README $out/README
  '';
}
