# A small CMake project built by ninja for the reuse tests: the prefix is baked into a compile
# definition (`PREFIX="${CMAKE_INSTALL_PREFIX}"`, a common CMake idiom), so every compile
# command names the output path, and ninja reruns a command whose hash in `.ninja_log` is not
# that of its command line. `variant`: "a", "source" (one line of text.c changed) or "install"
# (postInstall writes one more file). The phases are written out as nixpkgs' cmake and ninja
# setup hooks would provide them; cmake and ninja come from the host (Debian's `cmake` and
# `ninja-build`). Linked without a GNU build-id, as in cproject.nix.
{ mkDrv, variant ? "a", base ? null, name ? "reuse-cmake", salt ? null }:
let
  greeting = if variant == "source" then "Hello, changed world" else "Hello, world";
  src = derivation {
    name = "cmake-project-src";
    system = builtins.currentSystem;
    builder = "/bin/bash";
    args = [ "-c" ''
      set -e
      export PATH=/usr/bin:/bin
      mkdir -p $out
      cd $out
      cat > CMakeLists.txt <<'EOS'
      cmake_minimum_required(VERSION 3.13)
      project(greet C)
      add_executable(greet main.c util.c text.c)
      target_compile_definitions(greet PRIVATE PREFIX="''${CMAKE_INSTALL_PREFIX}")
      target_link_options(greet PRIVATE -Wl,--build-id=none)
      install(TARGETS greet DESTINATION bin)
      EOS
      printf '#include "util.h"\nint main(void) { return greet(); }\n' > main.c
      printf '#include <stdio.h>\n#include "util.h"\nint greet(void) { printf("%%s from %%s\\n", text(), PREFIX); return 0; }\n' > util.c
      printf '#include "util.h"\nconst char *text(void) { return "${greeting}"; }\n' > text.c
      printf 'int greet(void);\nconst char *text(void);\n' > util.h
    '' ];
  };
in
mkDrv {
  inherit name src;
  outputs = [ "out" "checkpoint" ];
  configurePhase = ''
    runHook preConfigure
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$out"
    cd build
    runHook postConfigure
  '';
  buildPhase = ''
    runHook preBuild
    ninja -j"$NIX_BUILD_CORES" -v
    runHook postBuild
  '';
  installPhase = ''
    runHook preInstall
    ninja -v install
    runHook postInstall
  '';
  postInstall = if variant == "install" then ''
    echo "installed differently" > $out/extra.txt
  '' else null;
  # Fresh derivations for every test run (the same within one run).
  testSalt = salt;
  checkpointBase = if base == null then null else builtins.storePath base;
}
