# Derivations for bench/resume.sh: a project from tests/projects with an installPhase that
# fails ("broken") or works ("fixed"), writing its layers to a development cache.
{ project ? "zstd", builder ? null, sources, salt, cache ? null, variant ? "fixed" }:
let
  drv = (import ../tests/projects {
    stdenvNix = ../tests/stdenv/stdenv.nix;
    inherit builder sources;
    benchSalt = salt;
  }).${project};
in
if builder == null then drv
else drv.overrideAttrs (old: {
  checkpointCache = cache;
  postInstall = (old.postInstall or "") + (if variant == "broken"
    then "echo 'this installPhase fails'; false\n"
    else "echo fixed > /dev/null\n");
})
