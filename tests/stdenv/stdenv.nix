# The conformance tests' own stdenv: a raw `derivation` whose $out/setup is
# setup.sh behind the usual preamble, plus `mkDrv`, shaped like the output of
# `stdenv.mkDerivation` for the attributes the cases use.  Same interface as
# shared/realstdenv/stdenv.nix, so a case runs unchanged on either.
#
# Tools come from the host: bash is /bin/bash and PATH is built from /usr.
{ system ? builtins.currentSystem
  # When non-null, every derivation mkDrv makes uses this builder instead of
  # bash; `builderArgs` ({ attrs, stockArgs }: [ ... ]) then supplies its args
  # (null: the stock args).
, realBuilder ? null
, builderArgs ? null
, cores ? 2
, ...
}:
let
  shell = "/bin/bash";

  # Default setup hooks, sourced by `_activatePkgs` as plain-file inputs.
  defaultHooks = map (n: ./hooks + "/${n}.sh") [
    "move-docs"
    "multiple-outputs"
    "patch-shebangs"
    "reproducible-builds"
    "set-source-date-epoch"
  ];

  hostStdenv = derivation {
    name = "checkpoint-test-stdenv";
    inherit system shell;
    builder = shell;
    args = [ "-e" ./builder.sh ];
    setup = ./setup.sh;
    initialPath = [ "/usr" ];
    defaultNativeBuildInputs = defaultHooks;
    defaultBuildInputs = [ ];
    # The stdenv-level preHook, run before setup.sh sets its options.
    preHook = ''
      export NIX_ENFORCE_PURITY="''${NIX_ENFORCE_PURITY-1}"
      export NIX_ENFORCE_NO_NATIVE="''${NIX_ENFORCE_NO_NATIVE-1}"
    '';
  };

  sourceStdenv = ./source-stdenv.sh;
  defaultBuilder = ./default-builder.sh;

  mkDrv = attrs@{ name, ... }:
    let
      stockArgs = attrs.args or [ "-e" sourceStdenv (attrs.builder or defaultBuilder) ];
      chosen =
        if realBuilder != null then {
          builder = realBuilder;
          args = if builderArgs != null then builderArgs { inherit attrs stockArgs; } else stockArgs;
        } else {
          builder = attrs.realBuilder or shell;
          args = stockArgs;
        };
      defaults = {
        inherit system;
        __ignoreNulls = true;
        stdenv = hostStdenv;
        outputs = [ "out" ];
        strictDeps = false;
        enableParallelBuilding = true;
        depsBuildBuild = [ ];
        depsBuildBuildPropagated = [ ];
        nativeBuildInputs = [ ];
        propagatedNativeBuildInputs = [ ];
        depsBuildTarget = [ ];
        depsBuildTargetPropagated = [ ];
        depsHostHost = [ ];
        depsHostHostPropagated = [ ];
        buildInputs = [ ];
        propagatedBuildInputs = [ ];
        depsTargetTarget = [ ];
        depsTargetTargetPropagated = [ ];
        doCheck = false;
        doInstallCheck = false;
        configureFlags = [ ];
        patches = [ ];
        userHook = null;
      };
      drv = derivation (defaults
        // removeAttrs attrs [ "passthru" "realBuilder" "args" "builder" ]
        // chosen);
    in
    drv // {
      inherit attrs;
      overrideAttrs = f: mkDrv (attrs // f attrs);
    } // (attrs.passthru or { });
in
{
  inherit hostStdenv mkDrv defaultHooks cores;
  # No compiler wrapper on this stdenv (tests/nix/with-cc-wrapper.nix): it has no strip
  # hook, so gcc's debug information reaches outputs, and there the wrapper's -frandom-seed
  # (from $out) orders gcc's DWARF string table, which a reused object cannot match (see
  # tests/projects/README.md, "The compiler wrapper").
  testCcWrapper = false;
}
