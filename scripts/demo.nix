# The main job's derivations: a real project from tests/projects built with the
# stock builder, or with checkpoint-builder and a `checkpoint` output.
{ project ? "zstd", builder ? null, sources, salt }:
let
  projects = import ../tests/projects {
    stdenvNix = ../tests/stdenv/stdenv.nix;
    inherit builder sources;
    benchSalt = salt;
  };
  drv = projects.${project};
in
if builder == null then drv
else drv.overrideAttrs (old: { outputs = (old.outputs or [ "out" ]) ++ [ "checkpoint" ]; })
