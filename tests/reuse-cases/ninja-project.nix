# A small C project built by ninja for the reuse tests, configured by CMake or Meson
# (`generator`; "cmake-make": CMake for make, built by the stdenv's make phases): the
# prefix reaches every compile command through a compile definition
# (CMake's `target_compile_definitions(… PREFIX="${CMAKE_INSTALL_PREFIX}")`, Meson's
# `add_project_arguments('-DPREFIX="…"')`, common idioms of both), so ninja reruns a command
# whose hash in `.ninja_log` is not that of its command line. `variant`: "a", "source" (one
# line of text.c changed), "install" (postInstall writes one more file), "added" (a new
# source file, extra.c, added to the program in CMakeLists.txt and meson.build) or
# "version" (a version given to `project()`). The phases are
# written out as nixpkgs' cmake, meson and ninja setup hooks would provide them; cmake, meson
# and ninja come from the host (Debian's `cmake`, `meson`, `ninja-build`). Linked without a
# GNU build-id, as in cproject.nix.
{ mkDrv, generator, variant ? "a", base ? null, name ? "reuse-ninja", salt ? null }:
assert generator == "cmake" || generator == "meson" || generator == "cmake-make";
let
  greeting = if variant == "source" then "Hello, changed world" else "Hello, world";
  src = derivation {
    name = "${generator}-project-src";
    system = builtins.currentSystem;
    builder = "/bin/bash";
    args = [ "-c" ''
      set -e
      export PATH=/usr/bin:/bin
      mkdir -p $out
      cd $out
      cat > CMakeLists.txt <<'EOS'
      cmake_minimum_required(VERSION 3.13)
      project(greet ${if variant == "version" then "VERSION 1.1 LANGUAGES " else ""}C)
      add_executable(greet main.c util.c text.c${if variant == "added" then " extra.c" else ""})
      target_compile_definitions(greet PRIVATE PREFIX="''${CMAKE_INSTALL_PREFIX}")
      target_link_options(greet PRIVATE -Wl,--build-id=none)
      install(TARGETS greet DESTINATION bin)
      EOS
      cat > meson.build <<'EOS'
      project('greet', 'c'${if variant == "version" then ", version: '1.1'" else ""})
      add_project_arguments('-DPREFIX="@0@"'.format(get_option('prefix')), language: 'c')
      executable('greet', 'main.c', 'util.c', 'text.c',${if variant == "added" then " 'extra.c'," else ""}
        link_args: ['-Wl,--build-id=none'], install: true)
      EOS
      printf '#include "util.h"\nint main(void) { return greet(); }\n' > main.c
      printf '#include <stdio.h>\n#include "util.h"\nint greet(void) { printf("%%s from %%s\\n", text(), PREFIX); return 0; }\n' > util.c
      printf '#include "util.h"\nconst char *text(void) { return "${greeting}"; }\n' > text.c
      printf 'int greet(void);\nconst char *text(void);\n' > util.h
      ${if variant == "added" then "printf 'int extra(void) { return 42; }\\n' > extra.c" else ""}
    '' ];
  };
in
mkDrv ({
  inherit name src;
  outputs = [ "out" "checkpoint" ];
  configurePhase = ''
    runHook preConfigure
    ${if generator == "cmake"
      then ''cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$out"''
      else if generator == "cmake-make"
      then ''cmake -S . -B build -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$out"''
      else ''meson setup build --prefix="$out" --buildtype=release''}
    cd build
    runHook postConfigure
  '';
  postInstall = if variant == "install" then ''
    echo "installed differently" > $out/extra.txt
  '' else null;
  # Fresh derivations for every test run (the same within one run).
  testSalt = salt;
  checkpointBase = if base == null then null else builtins.storePath base;
} // (if generator == "cmake-make" then { } else import ../projects/ninja-phases.nix))
