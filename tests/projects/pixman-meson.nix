# pixman from its Debian orig tarball (the corpus pin `corpus-pixman`), configured by Meson for
# ninja with the corpus's options (tests/projects/corpus), built and installed by ninja: the
# Meson project of the reuse benchmark (bench/reuse.sh). ninja decides what an incremental
# build recompiles (the mtimes and command hashes of `.ninja_log`, `.ninja_deps` for headers,
# the regeneration rule on the meson.build files). The phases are written out, so the build
# runs on any stdenv with meson and ninja on the PATH (Debian's `meson` and `ninja-build`,
# bound in from the host).
# `variant` (see variant.nix): the one-line change rewrites the message pixman prints on a
# bug (pixman-utils.c), so the library itself shows it; the header change touches a
# definition of the header most of the compositing code includes.
{ mkDrv, sources, variant ? "base" }:
let name = "pixman-meson-0.42.2"; in
mkDrv ({
  inherit name;
  src = import ./orig-tarball.nix sources "corpus-pixman";
  configurePhase = ''
    runHook preConfigure
    meson setup build --prefix="$out" --libdir=lib --buildtype=plain \
      --wrap-mode=nodownload -Dtests=disabled -Dgtk=disabled -Dlibpng=disabled \
      -Dopenmp=disabled
    cd build
    runHook postConfigure
  '';
} // import ./ninja-phases.nix // import ./variant.nix {
  inherit variant name;
  file = "pixman/pixman-utils.c";
  expression = ''s|"Set a breakpoint on '"'"'_pixman_log_error'"'"' to debug\\n\\n",|"Set a breakpoint on '"'"'_pixman_log_error'"'"' to debug (one-line change)\\n\\n",|'';
  header = "pixman/pixman-combine32.h";
  headerExpression = ''s|^#define COMPONENT_SIZE 8$|#define COMPONENT_SIZE 8 /* (one-line change) */|'';
})
