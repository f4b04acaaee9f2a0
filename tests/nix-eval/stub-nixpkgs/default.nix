# A stand-in for nixpkgs, written for the offline evaluation checks (no nixpkgs code): the
# entry point takes the arguments nixpkgs takes and returns a package set, built as a
# fixed point of `overlays`, holding what the repository's Nix code uses. Derivations are
# real `derivation` calls (so paths, outputs and contexts are real) that are never built.
#
# What mimics nixpkgs (and is what the checks rely on):
# - stdenv.mkDerivation: `builder` = attrs.realBuilder or stdenv.shell; `args` = attrs.args
#   or [ "-e" source-stdenv.sh (attrs.builder or default-builder.sh) ]; `outputs` default
#   [ "out" ]; `env` merged into the top level; `passthru` and `meta` kept out of the
#   derivation; nulls dropped (`__ignoreNulls`); `stdenv` passed in; the result carries
#   `overrideAttrs` (an attrset, prev: or final: prev:), `inputDerivation`, the passthru;
#   a function argument is a fixed point over the final attributes;
# - stdenv.override (old: { ... }) with `mkDerivationFromStdenv` (absent from `old` unless
#   an earlier override set it), as stdenv adapters use it;
# - callPackage (arguments from the set by name) with `.override`;
# - config.replaceStdenv { pkgs }: the stdenv of the returned set, with `pkgs` a set of
#   the same overlays without it.
{
  localSystem ? {
    system = args.system or "x86_64-linux";
  },
  config ? { },
  overlays ? [ ],
  ...
}@args:
let
  lib = import ./lib.nix;
  system = localSystem.system or localSystem;
  platform = {
    inherit system;
    libc = "glibc";
    isLinux = true;
  };

  sourceStdenv = ./source-stdenv.sh;
  defaultBuilder = ./default-builder.sh;

  # The stdenv derivation itself: a raw derivation, like nixpkgs'.
  stdenvDrv = derivation {
    name = "stub-stdenv";
    inherit system;
    builder = "/bin/sh";
    args = [
      "-c"
      "echo stub > $out"
    ];
  };

  defaultMkDerivationFromStdenv =
    stdenv: fnOrAttrs:
    let
      make =
        rattrs:
        let
          attrs = lib.fix rattrs;
          outputs = attrs.outputs or [ "out" ];
          passthru = attrs.passthru or { };
          drvAttrs =
            removeAttrs attrs [
              "realBuilder"
              "builder"
              "args"
              "passthru"
              "meta"
              "env"
              "outputs"
            ]
            // (attrs.env or { })
            // {
              inherit system outputs;
              name = attrs.name or "${attrs.pname}-${attrs.version}";
              __ignoreNulls = true;
              stdenv = stdenvFinal;
              builder = attrs.realBuilder or stdenv.shell;
              args = attrs.args or [
                "-e"
                sourceStdenv
                (attrs.builder or defaultBuilder)
              ];
            };
          drv = derivation drvAttrs;
          stdenvFinal = stdenv;
        in
        drv
        // {
          meta = attrs.meta or { };
          inherit passthru;
          overrideAttrs =
            f:
            make (
              final:
              let
                prev = rattrs final;
                step = if builtins.isFunction f then f prev else f;
              in
              prev // (if builtins.isFunction step then f final prev else step)
            );
          inputDerivation = derivation (
            drvAttrs
            // {
              outputs = [ "out" ];
              _derivation_original_builder = drvAttrs.builder;
              _derivation_original_args = drvAttrs.args;
              builder = stdenv.shell;
              args = [
                "-c"
                "export > $out"
              ];
            }
          );
        }
        // passthru;
    in
    make (if builtins.isFunction fnOrAttrs then fnOrAttrs else _: fnOrAttrs);

  makeStdenv =
    stdenvArgs:
    let
      self =
        stdenvDrv
        // {
          shell = "/stub/bash/bin/bash";
          buildPlatform = platform;
          hostPlatform = platform;
          targetPlatform = platform;
          isLinux = true;
          mkDerivation = (stdenvArgs.mkDerivationFromStdenv or defaultMkDerivationFromStdenv) self;
          override = f: makeStdenv (stdenvArgs // (if builtins.isFunction f then f stdenvArgs else f));
        };
    in
    self;

  vanillaStdenv = makeStdenv { name = "stdenv"; };

  stubPackage =
    stdenv: name:
    stdenv.mkDerivation {
      inherit name;
      meta.mainProgram = name;
    };

  # The package set before overlays, given the final one.
  base =
    final:
    let
      callPackageWith =
        autoArgs: fn: overrides:
        let
          f = if builtins.isFunction fn then fn else import fn;
          result = f (builtins.intersectAttrs (builtins.functionArgs f) autoArgs // overrides);
        in
        if builtins.isAttrs result then
          result
          // {
            override = newOverrides: callPackageWith autoArgs fn (overrides // newOverrides);
          }
        else
          result;
    in
    {
      inherit lib;
      path = ./.;
      stdenv = if config ? replaceStdenv then config.replaceStdenv { pkgs = vanillaPkgs; } else vanillaStdenv;
      stdenvNoCC = vanillaStdenv;
      callPackage = callPackageWith final;

      hello = final.callPackage (
        { stdenv }:
        stdenv.mkDerivation (finalAttrs: {
          pname = "hello";
          version = "2.12.1";
          src = ./hello-src.txt;
          doCheck = true;
          passthru.tests.version = finalAttrs.version;
          meta.mainProgram = "hello";
        })
      ) { };

      rustPlatform.buildRustPackage =
        args:
        final.stdenv.mkDerivation (
          removeAttrs args [ "cargoLock" ]
          // {
            cargoDeps = builtins.toFile "stub-cargo-deps" (builtins.readFile args.cargoLock.lockFile);
          }
        );

      glibc = stubPackage final.stdenv "glibc" // {
        static = stubPackage final.stdenv "glibc-static";
      };

      writeText = name: text: derivation {
        inherit name text system;
        builder = "/bin/sh";
        args = [
          "-c"
          "echo \"$text\" > $out"
        ];
      };

      runCommand =
        name: env: buildCommand:
        final.stdenv.mkDerivation (
          env
          // {
            inherit name buildCommand;
          }
        );

      writeShellApplication =
        {
          name,
          text,
          runtimeInputs ? [ ],
        }:
        final.runCommand name {
          inherit text runtimeInputs;
          meta.mainProgram = name;
        } "write it";

      mkShell =
        {
          packages ? [ ],
          inputsFrom ? [ ],
          ...
        }@shellArgs:
        final.stdenv.mkDerivation (
          removeAttrs shellArgs [
            "packages"
            "inputsFrom"
          ]
          // {
            name = shellArgs.name or "nix-shell";
            nativeBuildInputs = packages ++ map (d: d.name) inputsFrom;
          }
        );

      # Records the test; forces its script and applies each node module to stub module
      # arguments, so an evaluation error in either shows up here.
      testers.runNixOSTest =
        test:
        let
          moduleArgs = {
            inherit lib;
            pkgs = final;
            config = { };
            nodes = { };
          };
          nodes = builtins.mapAttrs (
            _: m: builtins.deepSeq (if builtins.isFunction m then m moduleArgs else m) true
          ) test.nodes;
          script = if builtins.isFunction test.testScript then test.testScript moduleArgs else test.testScript;
        in
        derivation {
          name = "vm-test-run-${test.name}";
          inherit system script;
          nodes = builtins.attrNames nodes;
          nodesEvaluated = builtins.all (x: x) (builtins.attrValues nodes);
          builder = "/bin/sh";
          args = [
            "-c"
            "exit 1"
          ];
        };
    }
    // builtins.listToAttrs (
      map
        (n: {
          name = n;
          value = stubPackage final.stdenv n;
        })
        [
          "cargo"
          "clippy"
          "coreutils"
          "file"
          "gnugrep"
          "gnused"
          "jq"
          "nix"
          "python3"
          "rust-analyzer"
          "rustc"
          "rustfmt"
        ]
    )
    // {
      nixfmt = stubPackage final.stdenv "nixfmt-1.0.0" // {
        version = "1.0.0";
      };
    };

  fixWithOverlays = os: lib.fix (builtins.foldl' (lib.flip lib.extends) base os);

  # The set `config.replaceStdenv` is given: the same overlays, the stock stdenv.
  vanillaPkgs = import ./. {
    inherit localSystem overlays;
    config = removeAttrs config [ "replaceStdenv" ];
  };
in
fixWithOverlays overlays
