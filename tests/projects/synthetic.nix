# A synthetic C project for the scale benchmark (bench/scale.sh): `units` generated compile
# units (synthetic-gen.py: each with a 4096-entry table and a few functions, built with -g and
# dependency files) in one static library and a program. About 165 KB of build directory per
# unit: 2500 units (`synthetic`) make a build directory of about 400 MB, 250
# (`synthetic-small`) one ten times smaller. The source is a tarball generated once per
# `units` by a raw derivation (python3 and tar from the host), so it is the same for every
# variant but "oneline-src". `variant` (see variant.nix): "oneline" appends "(one-line
# change)" to the banner in src/u00000.c that `synth` prints; "header" changes a constant in
# include/g000.h (the objects record it in their .d files); "oneline-src" makes oneline's
# change in the tarball.
{ mkDrv, sources, variant ? "base", units ? 2500 }:
let
  # "oneline-src": the one-line change of "oneline" made in the tarball itself, as a new
  # source release or a local checkout brings it (unpackPhase runs, patchPhase has nothing
  # to do).
  srcEdit = variant == "oneline-src";
  toolEdit = variant == "oneline-tool";
  src = derivation {
    name = "synthetic-${toString units}${if srcEdit then "-edited" else ""}.tar.gz";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" ''
      set -e
      export PATH=/usr/bin:/bin
      mkdir synthetic-${toString units}
      python3 ${./synthetic-gen.py} ${toString units} synthetic-${toString units}
      ${if srcEdit then ''
        sed -i -e 's/"synthetic project"/"synthetic project (one-line change)"/' \
          synthetic-${toString units}/src/u00000.c
        grep -q '(one-line change)' synthetic-${toString units}/src/u00000.c
      '' else ""}
      tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner \
        -czf "$out" synthetic-${toString units}
    '' ];
  };
  name = "synthetic-${toString units}";
in
mkDrv ({
  inherit name;
  inherit src;
  dontConfigure = true;
  makeFlags = [ "PREFIX=${placeholder "out"}" ];
} // import ./variant.nix {
  variant = if srcEdit then "base" else if toolEdit then "oneline" else variant;
  inherit name;
  file = if toolEdit then "src/tool.c" else "src/u00000.c";
  expression =
    if toolEdit then ''s/"synthetic tool"/"synthetic tool (one-line change)"/''
    else ''s/"synthetic project"/"synthetic project (one-line change)"/'';
  header = "include/g000.h";
  headerExpression = ''s/^#define G0_SCALE .*/& + 1 \/* (one-line change) *\//'';
})
