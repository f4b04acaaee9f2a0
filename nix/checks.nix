# The flake's checks for one system (`pkgs` has the overlay applied):
#   rustCheckpointBuilder  the static binary; its checkPhase runs the builder's unit tests
#   clippy                 cargo clippy --workspace --all-targets -D warnings
#   rustfmt                cargo fmt --check
#   nix-eval               scripts/nix-eval-check.sh (the Nix code against a nixpkgs stub)
#   vm-<name>              every vm-tests/<name>.nix, found by listing the directory, so a
#                          new file is a new check (needs KVM)
{ pkgs }:
let
  inherit (pkgs) lib;
  builder = pkgs.rustCheckpointBuilder;

  # vm-tests/*.nix; helpers live in vm-tests/lib/, a directory, so they are not listed.
  vmTestFiles = lib.filterAttrs (
    name: type: type == "regular" && lib.hasSuffix ".nix" name
  ) (builtins.readDir ../vm-tests);

  vmTests = lib.mapAttrs' (
    file: _:
    lib.nameValuePair "vm-${lib.removeSuffix ".nix" file}" (
      import (../vm-tests + "/${file}") { inherit pkgs; }
    )
  ) vmTestFiles;
in
{
  rustCheckpointBuilder = builder;

  # Same sources, vendored dependencies and toolchain as the package; lints instead of
  # building. Without the crt-static RUSTFLAGS: clippy is not given `--target`, so they
  # would reach proc macros too.
  clippy = builder.overrideAttrs (prev: {
    pname = "checkpoint-builder-clippy";
    nativeBuildInputs = (prev.nativeBuildInputs or [ ]) ++ [ pkgs.clippy ];
    env = removeAttrs (prev.env or { }) [ "RUSTFLAGS" ];
    buildPhase = ''
      runHook preBuild
      cargo clippy --workspace --all-targets --offline -- -D warnings
      runHook postBuild
    '';
    installPhase = ''
      runHook preInstall
      mkdir -p $out
      runHook postInstall
    '';
    doCheck = false;
    doInstallCheck = false;
  });

  rustfmt =
    pkgs.runCommand "checkpoint-builder-rustfmt"
      {
        nativeBuildInputs = [
          pkgs.cargo
          pkgs.rustfmt
        ];
      }
      ''
        cp -r ${builder.src} source
        chmod -R u+w source
        cd source
        HOME=$TMPDIR cargo fmt --check
        touch $out
      '';

  # The offline evaluation checks, in a throwaway chroot store inside the build.
  nix-eval =
    pkgs.runCommand "checkpoint-builder-nix-eval"
      {
        nativeBuildInputs = [ pkgs.nix ];
        src = lib.fileset.toSource {
          root = ../.;
          # What the Nix code reads (the package reads the Cargo files), not target/.
          fileset = lib.fileset.unions [
            ../flake.nix
            ../nix
            ../lib
            ../stdenv-overlay
            ../vm-tests
            ../scripts/nix-eval-check.sh
            ../Cargo.toml
            ../Cargo.lock
            ../builder
            ../tests
          ];
        };
      }
      ''
        cp -r $src repo
        chmod -R u+w repo
        export HOME=$TMPDIR
        NIX_EVAL_CHECK_STORE=$TMPDIR/store bash repo/scripts/nix-eval-check.sh
        touch $out
      '';
}
// vmTests
