# The project of cmake-project.nix as a Meson project (built by ninja): the prefix reaches
# every compile command through `add_project_arguments('-DPREFIX="…"')`, a common Meson
# idiom. `variant`: "a", "source" (one line of text.c changed) or "install" (postInstall
# writes one more file). The phases are written out as nixpkgs' meson and ninja setup hooks
# would provide them; meson and ninja come from the host (Debian's `meson` and
# `ninja-build`). Linked without a GNU build-id, as in cproject.nix.
{ mkDrv, variant ? "a", base ? null, name ? "reuse-meson", salt ? null }:
let
  greeting = if variant == "source" then "Hello, changed world" else "Hello, world";
  src = derivation {
    name = "meson-project-src";
    system = builtins.currentSystem;
    builder = "/bin/bash";
    args = [ "-c" ''
      set -e
      export PATH=/usr/bin:/bin
      mkdir -p $out
      cd $out
      cat > meson.build <<'EOS'
      project('greet', 'c')
      add_project_arguments('-DPREFIX="@0@"'.format(get_option('prefix')), language: 'c')
      executable('greet', 'main.c', 'util.c', 'text.c',
        link_args: ['-Wl,--build-id=none'], install: true)
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
    meson setup build --prefix="$out" --buildtype=release
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
