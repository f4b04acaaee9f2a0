# Entry point of the conformance tests: one case built on one stdenv with one
# builder.  `builder` is the checkpoint-builder binary (a path) or null for the
# stock bash builder; `stdenvNix` is tests/stdenv/stdenv.nix or a stdenv with
# the same interface (shared/realstdenv/stdenv.nix); `case` is a case file.
{ stdenvNix ? ../stdenv/stdenv.nix
, builder ? null
, case
}:
let
  stdenv = import stdenvNix {
    # A string with context (the binary copied into the store): under structured
    # attrs Nix wants `builder` to be a string, not a path.
    realBuilder = if builder == null then null else "${builder}";
    builderArgs = { attrs, stockArgs }: stockArgs;
  };
in
import case { inherit (stdenv) mkDrv; }
