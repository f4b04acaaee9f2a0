# A build that does nothing of its own: no source, no work in any phase, an empty `out`, no
# fixupPhase. It costs what every build on the stdenv costs around its work: the sandbox,
# sourcing the stdenv's setup and hooks, genericBuild running through the phases,
# registering the output. bench/incremental.sh counts it in the limit of an incremental
# build (issue 19's "no-op Nix build"), beside the fixupPhase it times on its own.
{ mkDrv, sources, variant }:
mkDrv {
  name = "noop";
  dontUnpack = true;
  installPhase = "mkdir -p $out";
  dontFixup = true;
}
