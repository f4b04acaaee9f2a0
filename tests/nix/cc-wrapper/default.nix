# A small compiler and linker wrapper for the test stdenvs, in the spirit of nixpkgs'
# cc-wrapper and bintools-wrapper (written for this project; see tests/projects/README.md,
# "The compiler wrapper"). It wraps the host's /usr/bin/gcc, g++ and ld so that every compile
# gets NIX_CFLAGS_COMPILE and every link NIX_CFLAGS_LINK and NIX_LDFLAGS (the stdenv's
# `-rpath $out/lib` among them), as in a nixpkgs build. Put it in `nativeBuildInputs`: its
# setup hook marks the role it serves and exports NIX_CC, CC, CXX and the binutils names.
{ system ? builtins.currentSystem }:
derivation {
  name = "checkpoint-test-cc-wrapper";
  inherit system;
  builder = "/bin/bash";
  args = [ "-e" ./builder.sh ];
  PATH = "/usr/bin:/bin";
  realCc = "/usr/bin/gcc";
  realCxx = "/usr/bin/g++";
  realLd = "/usr/bin/ld";
  roles = ./roles.bash;
  ccWrapper = ./cc-wrapper.sh;
  ldWrapper = ./ld-wrapper.sh;
  hook = ./setup-hook.sh;
}
