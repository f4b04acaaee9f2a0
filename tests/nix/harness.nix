# Entry point of the conformance tests: one case built on one stdenv with one
# builder.  `builder` is the checkpoint-builder binary (a path) or null for the
# stock bash builder; `stdenvNix` is tests/stdenv/stdenv.nix or a stdenv with
# the same interface (shared/realstdenv/stdenv.nix); `case` is a case file. Every
# derivation gets the compiler wrapper (with-cc-wrapper.nix).
{ stdenvNix ? ../stdenv/stdenv.nix
, builder ? null
, case
}:
let
  # The stock build of a structured-attrs case runs as Nix >= 2.9 runs it. Nix 2.8 exports
  # NIX_ATTRS_SH_FILE and NIX_ATTRS_JSON_FILE as paths outside the sandbox, so nixpkgs'
  # source-stdenv.sh finds no attrs file, `$stdenv` stays unset and `source /setup` fails
  # before any phase; later versions name the files in the build directory, where Nix 2.8
  # writes them too. Pointing both variables there, and nothing else, gives the stock run a
  # newer Nix would give (our builder makes the same fallback itself, see README).
  nixAttrsAsNewerNix = [
    "-c"
    ''export NIX_ATTRS_SH_FILE="$NIX_BUILD_TOP/.attrs.sh" NIX_ATTRS_JSON_FILE="$NIX_BUILD_TOP/.attrs.json"; exec /bin/bash "$@"''
    "stock-bash"
  ];
  stdenv = import ./with-cc-wrapper.nix { stdenv = import stdenvNix (if builder != null then {
    # A string with context (the binary copied into the store): under structured
    # attrs Nix wants `builder` to be a string, not a path.
    realBuilder = "${builder}";
    builderArgs = { attrs, stockArgs }: stockArgs;
  } else {
    realBuilder = "/bin/bash";
    builderArgs = { attrs, stockArgs }:
      if attrs.__structuredAttrs or false then nixAttrsAsNewerNix ++ stockArgs else stockArgs;
  }); };
in
import case { inherit (stdenv) mkDrv; }
