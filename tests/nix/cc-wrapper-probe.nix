# The compiler wrapper's probe (tests/cc_wrapper.rs): a program built against a shared
# library of its own (installed in $out/lib, linked from the build tree) and one from a
# dependency in the store (found through the wrapper's env hook), and an object compiled
# with -g kept unstripped in share/. From the output one can tell whether NIX_CFLAGS_COMPILE
# reached the compile (the object's DW_AT_producer carries -frandom-seed) and whether
# NIX_LDFLAGS and the linker wrapper reached the link (the program's RUNPATH). Both
# derivations name the wrapper themselves, so the probe checks it on either stdenv (the
# harness adds it only on those that want it, tests/nix/with-cc-wrapper.nix).
{ mkDrv }:
let
  ccWrapper = import ./cc-wrapper { };
  dep = mkDrv {
    name = "cc-wrapper-probe-dep";
    nativeBuildInputs = [ ccWrapper ];
    dontUnpack = true;
    buildPhase = ''
      printf 'int probe_dep(void) { return 30; }\n' > dep.c
      $CC -shared -fPIC -o libprobedep.so dep.c
    '';
    installPhase = ''
      mkdir -p $out/lib
      cp libprobedep.so $out/lib/
    '';
  };
in
mkDrv {
  name = "cc-wrapper-probe";
  nativeBuildInputs = [ ccWrapper ];
  dontUnpack = true;
  buildInputs = [ dep ];
  buildPhase = ''
    # The wrapper leaves a lone `-v` and `--version` alone.
    gcc -v 2>&1 | grep -q '^gcc version'
    gcc --version >/dev/null
    printf 'int probe_own(void) { return 12; }\n' > own.c
    printf '#include <stdio.h>\nint probe_own(void);\nint probe_dep(void);\nint main(void) { printf("%%d\\n", probe_own() + probe_dep()); return 0; }\n' > main.c
    mkdir -p lib
    $CC -shared -fPIC -o lib/libprobeown.so own.c
    $CC -g -c main.c -o main.o
    $CC -o probe main.o -Llib -lprobeown -lprobedep
  '';
  installPhase = ''
    mkdir -p $out/bin $out/lib $out/share/probe
    cp probe $out/bin/
    cp lib/libprobeown.so $out/lib/
    cp main.o $out/share/probe/
  '';
}
