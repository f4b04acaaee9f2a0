# zstd from Debian's orig tarball (dfsg repack): the default `make` (libzstd
# static and shared, and the `zstd` program), installed with PREFIX.
# `variant` (see variant.nix): "oneline" renames the program in the banner
# `zstd --version` prints (COMPRESSOR_NAME in programs/zstdcli.c); "header"
# changes a file extension in programs/fileio.h (the objects' `-MMD` depfiles
# list it).
{ mkDrv, sources, variant ? "base" }:
let name = "zstd-1.5.4"; in
mkDrv ({
  inherit name;
  src = import ./orig-tarball.nix sources "zstd";
  dontConfigure = true;
  # The program's Makefile links zlib/lzma/lz4 support when the host happens
  # to have their headers; switch it off so the output depends on no extra
  # host library.
  makeFlags = [ "PREFIX=${placeholder "out"}" "HAVE_ZLIB=0" "HAVE_LZMA=0" "HAVE_LZ4=0" ];
} // import ./variant.nix {
  inherit variant name;
  file = "programs/zstdcli.c";
  expression = ''s/^#define COMPRESSOR_NAME "Zstandard CLI"$/#define COMPRESSOR_NAME "Zstandard CLI (one-line change)"/'';
  header = "programs/fileio.h";
  headerExpression = ''s|^#define ZSTD_ALT_EXTENSION  ".zstd"|#define ZSTD_ALT_EXTENSION  ".zstd-alt" /* (one-line change) */|'';
})
