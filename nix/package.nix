# The checkpoint-builder binary, statically linked, so the sandbox needs nothing from
# the host to run it and it works as the builder of any derivation, the stdenv's own
# dependencies included.
#
# On glibc it links glibc statically: `-C target-feature=+crt-static`, which cargo applies
# to the target only because buildRustPackage always passes `--target` (build scripts
# and proc macros stay dynamic, as they must). Same as scripts/build-static.sh.
#
# checkPhase runs the builder crate's own tests; the tests/ crate (real Nix builds in
# throwaway stores, sources fetched from the network) runs outside Nix (scripts/test.sh).
{
  lib,
  stdenv,
  rustPlatform,
  glibc,
  file,
}:
let
  workspace = (lib.importTOML ../Cargo.toml).workspace.package;
  staticGlibc = stdenv.hostPlatform.libc == "glibc";
in
rustPlatform.buildRustPackage {
  pname = "checkpoint-builder";
  inherit (workspace) version;

  # The workspace (both members must be there for cargo), without fixtures and docs.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../builder
      ../tests/Cargo.toml
      (lib.fileset.fileFilter (f: lib.hasSuffix ".rs" f.name) ../tests)
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [
    "--package"
    "checkpoint-builder"
  ];
  cargoTestFlags = [
    "--package"
    "checkpoint-builder"
  ];

  buildInputs = lib.optionals staticGlibc [ glibc.static ];
  env = lib.optionalAttrs staticGlibc { RUSTFLAGS = "-C target-feature=+crt-static"; };

  doInstallCheck = true;
  nativeInstallCheckInputs = [ file ];
  installCheckPhase = ''
    runHook preInstallCheck
    bin=$out/bin/checkpoint-builder
    kind=$(file -b "$bin")
    case $kind in
      *"static-pie linked"* | *"statically linked"*) ;;
      *) echo "$bin is not statically linked: $kind" >&2; exit 1 ;;
    esac
    "$bin" --version
    runHook postInstallCheck
  '';

  meta = {
    description = "Nix builder that runs each stdenv phase in its own bash process and checkpoints the build";
    license = lib.licenses.mit;
    mainProgram = "checkpoint-builder";
    platforms = lib.platforms.linux;
  };
}
