# The main job's derivations: a real project from tests/projects built with the
# stock builder, or with checkpoint-builder and a `checkpoint` output.
{ project ? "zstd", builder ? null, sources, salt }:
(import ../tests/projects {
  stdenvNix = ../tests/stdenv/stdenv.nix;
  inherit builder sources;
  benchSalt = salt;
  checkpoint = builder != null;
}).${project}
