# The main job's derivations: a real project from tests/projects built with the
# stock builder, or with checkpoint-builder and a `checkpoint` output; `variant`
# "oneline" changes one line of one C file, `base` reuses an earlier checkpoint.
{ project ? "zstd", builder ? null, sources, salt, variant ? "base", base ? null }:
(import ../tests/projects {
  stdenvNix = ../tests/stdenv/stdenv.nix;
  inherit builder sources variant base;
  benchSalt = salt;
  checkpoint = builder != null;
}).${project}
