# The real projects, built on the stdenv at `stdenvNix` (the project's test
# stdenv, tests/stdenv/stdenv.nix, or /work/shared/realstdenv/stdenv.nix),
# with the stock builder or, when `builder` is given, with that binary
# receiving the stock arguments (`-e <source-stdenv.sh> <default-builder.sh>`).
#
#   nix-build tests/projects -A lua --arg stdenvNix ./tests/stdenv/stdenv.nix \
#     --arg sources "$(scripts/fetch-sources.sh lua >/dev/null; echo $PWD/target/sources)"
#
# `sources`: the directory scripts/fetch-sources.sh fills (a path or a string).
# `benchSalt`: any string; when non-null it is added to every derivation so a
# benchmark gets fresh derivations (and so real builds) on every run.
# `checkpoint`: with `builder`, add a `checkpoint` output, which the builder
# fills with every phase's layer.
# `variant`: "base" (the project as is), "oneline" (one line of one C file
# changed by postPatch) or "install" (postInstall writes one more file); see
# variant.nix.
# `base`: an earlier build's checkpoint (a store path string), reused through
# `checkpointBase`; needs `builder` and `checkpoint = true`.
# `theirs`: the flow of nixpkgs' checkpointBuildTools instead (stock builder, see
# checkpoint-build-tools.nix): "prepare" for the build that keeps the artifacts, or the
# store path (a string) of such a build for the incremental one.
#
#   nix-build tests/projects -A zstd ... --arg builder "$bin" --arg checkpoint true \
#     --argstr variant oneline --argstr base /nix/store/…-zstd-1.5.4-checkpoint
{ stdenvNix, builder ? null, sources, benchSalt ? null, checkpoint ? false
, variant ? "base", base ? null, theirs ? null }:
let
  stdenv = import ../nix/with-cc-wrapper.nix { stdenv = import stdenvNix {
    # A string with context (the binary copied into the store), as
    # tests/nix/harness.nix passes it.
    realBuilder = if builder == null then null else "${builder}";
    builderArgs = { attrs, stockArgs }: stockArgs;
  }; };
  mkDrv' = import ./mk-drv.nix {
    inherit (stdenv) mkDrv;
    inherit benchSalt base;
    checkpoint = checkpoint && builder != null;
  };
  mkDrv = if theirs == null then mkDrv'
    else attrs: mkDrv' (import ./checkpoint-build-tools.nix theirs attrs);
  project = file: import file { inherit mkDrv sources variant; };
in
{
  hello = project ./hello.nix;
  lua = project ./lua.nix;
  zstd = project ./zstd.nix;
  zstd-cmake = project ./zstd-cmake.nix;
  pixman-meson = project ./pixman-meson.nix;
  # The scale benchmark's synthetic projects (bench/scale.sh): about 400 MB of build
  # directory, and ten times less.
  synthetic = project ./synthetic.nix;
  synthetic-small = import ./synthetic.nix { inherit mkDrv sources variant; units = 250; };
  # What every build on the stdenv costs around its work (bench/incremental.sh's floor).
  noop = project ./noop.nix;
  zstd-cmake-make = import ./zstd-cmake.nix {
    inherit mkDrv sources variant;
    generator = "Unix Makefiles";
  };
}
