# Outputs out, dev, lib, doc and man: _multioutConfig's flags, the moves of
# docs, man pages, pkgconfig files and headers at fixup, and dev's
# propagated-build-inputs.
{ mkDrv, ... }:
mkDrv {
  name = "case-17a";
  outputs = [ "out" "dev" "lib" "doc" "man" ];
  src = ./src/multiout;
  nativeBuildInputs = [ ./lib/observe.sh ];
  # Nothing refers to doc, so observations (which name every output) go there.
  preHook = ''obsOut=$doc'';
  postInstall = ''
    obsVars configureFlags installFlags outputDev outputBin outputInclude outputLib \
      outputDoc outputDevdoc outputMan outputDevman outputInfo NIX_NO_SELF_RPATH NIX_LDFLAGS
  '';
  postFixup = ''
    obsVars propagatedBuildOutputs
  '';
}
