# The flow of nixpkgs' `checkpointBuildTools` (pkgs/build-support/checkpoint-build.nix),
# re-expressed for the benchmarks (bench/reuse.sh, bench/scale.sh) so they time the tool we
# replace on the same derivations, with the stock builder. Our own code; what it does:
#
#   "prepare"  the project built as usual until buildPhase, where preBuild first keeps a copy
#              of the source root as it is then (after patch and configure) in $out/sources;
#              installPhase copies the whole source root after the build to $out/outputs
#              instead of installing; no fixup, installCheck or dist; `out` only.
#   <path>     (the store path of a "prepare" build, as a string) the project's own build, in
#              whose preBuild the source root is compared with the prepared sources
#              (`diff -ur` into a patch), emptied, filled again from the prepared outputs
#              with rsync (checksums, times kept, made writable) and the patch applied: make
#              then rebuilds what the change touches.
#
# Host tools: diff, patch, mktemp and rsync (bound into the sandbox from /usr/bin).
mode: attrs:
if mode == "prepare" then
  attrs // {
    name = attrs.name + "-checkpointArtifacts";
    outputs = [ "out" ];
    preBuild = (attrs.preBuild or "") + ''
      mkdir -p "$out/sources"
      cp -r ./* "$out/sources/"
    '';
    installPhase = ''
      mkdir -p "$out/outputs"
      cp -r ./* "$out/outputs/"
    '';
    dontFixup = true;
    doInstallCheck = false;
    doDist = false;
  }
else
  let artifacts = builtins.storePath mode; in
  attrs // {
    preBuild = (attrs.preBuild or "") + ''
      set +e
      changes=$(mktemp)
      diff -ur ${artifacts}/sources ./ >"$changes"
      set -e
      shopt -s dotglob
      rm -r ./*
      rsync --checksum --times --atimes --chown="$(id -u):$(id -g)" --chmod=+w \
        -r ${artifacts}/outputs/ .
      patch -p 1 -i "$changes"
      rm "$changes"
    '';
  }
