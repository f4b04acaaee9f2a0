# GNU hello from Debian's orig tarball: the autotools path (a pre-generated
# configure, make, make check, make install) through every default phase.
# `variant` (see variant.nix): "oneline" appends "(one-line change)" to the
# first line `hello --version` prints (a string literal concatenated to VERSION
# in src/hello.c; `make check` tests only the greeting, so it still passes);
# "header" redefines VERSION in src/system.h, which the configure default
# `--disable-dependency-tracking` leaves out of every rule: make alone would
# not recompile hello.o.
{ mkDrv, sources, variant ? "base" }:
let name = "hello-2.10"; in
mkDrv ({
  inherit name;
  src = import ./orig-tarball.nix sources "hello";
  doCheck = true;
  # The binary embeds $out (LOCALEDIR, and gnulib's LIBDIR for
  # charset.alias), so the tests compare the stock build and ours after
  # replacing each build's output hash with a placeholder.  Two things would
  # carry the hash in a form no placeholder can reach, and are switched off:
  # - Debian's gcc links a GNU build-id, a SHA-1 of the whole file;
  # - gcc expands `memcpy (file_name, LIBDIR, len)` into overlapping 16-byte
  #   stores, so .rodata holds the path as pieces and the hash's last
  #   character is repeated at the start of the last piece.
  # Everything else (configure's default -g -O2) is as upstream.
  LDFLAGS = "-Wl,--build-id=none";
  CFLAGS = "-g -O2 -fno-builtin-memcpy";
} // import ./variant.nix {
  inherit variant name;
  file = "src/hello.c";
  expression = ''s/PACKAGE, PACKAGE_NAME, VERSION);/PACKAGE, PACKAGE_NAME, VERSION " (one-line change)");/'';
  header = "src/system.h";
  headerExpression = ''s/^# define N_(str) gettext_noop (str)$/&\n# undef VERSION\n# define VERSION "2.10 (one-line change)"/'';
})
