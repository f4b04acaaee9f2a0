{
  description = "checkpoint-builder: a Nix builder that snapshots every stdenv phase and rebuilds incrementally";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  # Wiring only: the package is nix/package.nix, the Nix API is stdenv-overlay/ (API.md)
  # and lib/ (docs/ci.md), the checks are nix/checks.nix and vm-tests/*.nix.
  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      pkgsFor = lib.genAttrs systems (
        system:
        import nixpkgs {
          inherit system;
          overlays = [ self.overlays.default ];
        }
      );
      forAllSystems = f: lib.mapAttrs (_: f) pkgsFor;
    in
    {
      overlays.default = import ./stdenv-overlay;

      lib = import ./lib {
        inherit lib;
        builderFor =
          system:
          self.packages.${system}.rustCheckpointBuilder
            or (throw "checkpoint-builder: no package for ${system} (systems: ${toString systems})");
      };

      packages = forAllSystems (pkgs: {
        inherit (pkgs) rustCheckpointBuilder;
        default = pkgs.rustCheckpointBuilder;
      });

      apps = forAllSystems (pkgs: {
        demo = {
          type = "app";
          program = lib.getExe (pkgs.callPackage ./nix/demo.nix { });
          meta.description = "Build GNU hello with checkpoints, change one line, rebuild incrementally";
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ pkgs.rustCheckpointBuilder ];
          packages = [
            pkgs.clippy
            pkgs.rustfmt
            pkgs.rust-analyzer
            pkgs.nixfmt
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt);

      checks = forAllSystems (pkgs: import ./nix/checks.nix { inherit pkgs; });
    };
}
