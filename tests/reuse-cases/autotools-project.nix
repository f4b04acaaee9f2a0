# A small automake project for the reuse tests, released as upstream releases it: its
# tarball is made by `autoreconf -i`, `./configure` and `make dist` (the host's autoconf and
# automake, Debian's `autoconf` and `automake`), so its generated files (`configure`,
# `Makefile.in`, `aclocal.m4`, `config.h.in`) are newer than `configure.ac`, and the sources
# older, as in a real release. Three sources: version.c includes the config.h configure
# writes, main.c the stamp.h a rule of the Makefile writes from `$(VERSION)` (with no
# prerequisite: make never remakes it by itself), util.c neither. `version` is the one in
# `AC_INIT`: a version bump changes `configure.ac`, `configure` and the
# tarball's top directory (`atdemo-1.0/` → `atdemo-1.1/`), and configure then writes
# `VERSION = 1.1` into the Makefile and `PACKAGE_VERSION` into config.h. `extra`: a fourth
# source file, extra.c, added to the program in Makefile.am (so Makefile.in changes too).
# Built the nixpkgs way (`--disable-dependency-tracking`), linked without a GNU build-id
# as cproject.nix.
{ mkDrv, version ? "1.0", extra ? false, base ? null, name ? "reuse-atdemo-${version}", salt ? null }:
let
  src = derivation {
    name = "atdemo-${version}${if extra then "-extra" else ""}.tar.gz";
    system = builtins.currentSystem;
    builder = "/bin/bash";
    args = [ "-c" ''
      set -e
      export PATH=/usr/bin:/bin
      mkdir atdemo && cd atdemo
      cat > configure.ac <<'EOS'
      AC_INIT([atdemo], [${version}])
      AM_INIT_AUTOMAKE([foreign])
      AC_PROG_CC
      AC_CONFIG_HEADERS([config.h])
      AC_CONFIG_FILES([Makefile])
      AC_OUTPUT
      EOS
      cat > Makefile.am <<'EOS'
      bin_PROGRAMS = atdemo
      atdemo_SOURCES = main.c util.c version.c util.h${if extra then " extra.c" else ""}
      nodist_atdemo_SOURCES = stamp.h
      BUILT_SOURCES = stamp.h
      CLEANFILES = stamp.h
      stamp.h:
      	echo '#define STAMP "built as $(PACKAGE) $(VERSION)"' > $@
      EOS
      printf '#include <stdio.h>\n#include "util.h"\n#include "stamp.h"\nint main(void) { puts(STAMP); return greet(); }\n' > main.c
      printf 'int greet(void);\nconst char *version(void);\n' > util.h
      printf '#include <stdio.h>\n#include "util.h"\nint greet(void) { printf("hello from %%s\\n", version()); return 0; }\n' > util.c
      printf '#include "config.h"\n#include "util.h"\nconst char *version(void) { return PACKAGE_STRING; }\n' > version.c
      ${if extra then "printf 'int extra(void) { return 42; }\\n' > extra.c" else ""}
      # As in a repository: the sources were written long ago, the release's configure.ac
      # edit later, and the files autoreconf generates now (a tarball keeps whole seconds).
      now=$(date +%s)
      touch -d "@$((now - 3000))" *.c util.h Makefile.am
      touch -d "@$((now - 2000))" configure.ac
      autoreconf -i >/dev/null 2>&1
      ./configure >/dev/null
      make dist >/dev/null
      cp atdemo-${version}.tar.gz $out
      # Not `cp` as the last command: bash would exec it, and coreutils close stderr before
      # exiting, which Nix reads as the builder's end and kills it (NixOS/nix#2176).
      exit 0
    '' ];
  };
in
mkDrv {
  inherit name src;
  outputs = [ "out" "checkpoint" ];
  LDFLAGS = "-Wl,--build-id=none";
  # Fresh derivations for every test run (the same within one run).
  testSalt = salt;
  checkpointBase = if base == null then null else builtins.storePath base;
}
