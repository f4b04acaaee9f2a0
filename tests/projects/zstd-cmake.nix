# zstd from the same orig tarball as zstd.nix, configured by its CMake build
# (build/cmake), as nixpkgs' cmake setup hook would: for ninja when the
# derivation has ninja (`generator = "Ninja"`: built and installed by ninja,
# whose own rules then decide what an incremental build recompiles: the mtimes
# and command hashes of `.ninja_log`, `.ninja_deps` for headers, the
# regeneration rule on CMakeLists.txt), else for make (`"Unix Makefiles"`:
# CMake's makefiles, `flags.make`, the dependency files CMake's
# `compiler_depend.make` collects, its `cmake --check-build-system` step).
# The phases are written out, so the build runs on any stdenv with cmake (and
# ninja) on the PATH (Debian's `cmake` and `ninja-build`, bound in from the
# host).
# `variant` (see variant.nix): the same edits as zstd.nix.
{ mkDrv, sources, variant ? "base", generator ? "Ninja" }:
assert generator == "Ninja" || generator == "Unix Makefiles";
let name = "zstd-cmake-1.5.4"; in
mkDrv ({
  inherit name;
  src = import ./orig-tarball.nix sources "zstd";
  configurePhase = ''
    runHook preConfigure
    cmake -S build/cmake -B build -G "${generator}" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$out" \
      -DZSTD_BUILD_TESTS=OFF -DZSTD_LEGACY_SUPPORT=ON
    cd build
    runHook postConfigure
  '';
} // (if generator == "Ninja" then import ./ninja-phases.nix else {
  # The stdenv's make-based build and install phases, on CMake's makefiles.
  enableParallelBuilding = true;
}) // import ./variant.nix {
  inherit variant name;
  file = "programs/zstdcli.c";
  expression = ''s/^#define COMPRESSOR_NAME "Zstandard CLI"$/#define COMPRESSOR_NAME "Zstandard CLI (one-line change)"/'';
  header = "programs/fileio.h";
  headerExpression = ''s|^#define ZSTD_ALT_EXTENSION  ".zstd"|#define ZSTD_ALT_EXTENSION  ".zstd-alt" /* (one-line change) */|'';
})
