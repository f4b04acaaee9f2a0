# zstd from the same orig tarball as zstd.nix, configured by its CMake build
# (build/cmake) for Ninja, built and installed by ninja: the project that puts
# ninja's own rules in charge of an incremental build (`.ninja_log`'s mtimes
# and command hashes, `.ninja_deps` for headers, the regeneration rule on
# CMakeLists.txt). The phases are written out, as nixpkgs' cmake and ninja
# setup hooks would provide them, so the build runs on any stdenv with cmake
# and ninja on the PATH (Debian's `cmake` and `ninja-build` packages, bound in
# from the host).
# `variant` (see variant.nix): the same edits as zstd.nix.
{ mkDrv, sources, variant ? "base" }:
mkDrv ({
  name = "zstd-cmake-1.5.4";
  src = import ./orig-tarball.nix sources "libzstd";
  configurePhase = ''
    runHook preConfigure
    cmake -S build/cmake -B build -G Ninja \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$out" \
      -DZSTD_BUILD_TESTS=OFF -DZSTD_LEGACY_SUPPORT=ON
    cd build
    runHook postConfigure
  '';
} // import ./ninja-phases.nix // import ./variant.nix {
  inherit variant;
  file = "programs/zstdcli.c";
  expression = ''s/^#define COMPRESSOR_NAME "Zstandard CLI"$/#define COMPRESSOR_NAME "Zstandard CLI (one-line change)"/'';
  header = "programs/fileio.h";
  headerExpression = ''s|^#define ZSTD_ALT_EXTENSION  ".zstd"|#define ZSTD_ALT_EXTENSION  ".zstd-alt" /* (one-line change) */|'';
})
