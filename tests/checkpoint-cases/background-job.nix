# A job buildPhase leaves running in the background, which writes a file while checkPhase
# (no doCheck: the stdenv starts no process for it) is recorded, and is waited for by
# installPhase. The layers after phases that start no process may skip walking the trees
# only while no process of the build runs: tests/checkpoint.rs checks the builder's notes
# and that the file the job wrote is in the layers from installPhase on.
{ mkDrv, ... }:
mkDrv {
  name = "background-job";
  outputs = [ "out" "checkpoint" ];
  dontUnpack = true;
  buildPhase = ''
    (sleep 1; echo "written by the job" >"$NIX_BUILD_TOP/late") &
    echo $! >"$NIX_BUILD_TOP/job"
  '';
  installPhase = ''
    while [[ ! -s $NIX_BUILD_TOP/late ]]; do sleep 0.1; done
    mkdir -p $out
    cp "$NIX_BUILD_TOP/late" $out/
  '';
}
