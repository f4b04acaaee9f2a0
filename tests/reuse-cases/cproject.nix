# A small autotools-shaped C project for the reuse tests: a configure script that bakes the
# prefix into the Makefile, three sources, a symlink, an executable script and a data file.
# `variant` changes one thing relative to "a" (install: postInstall; flags: buildFlags;
# source: one line of text.c; tree: a file added, one deleted, a binary file changed, a symlink
# retargeted, a mode changed; makefile: Makefile.in; source-flags: source and flags;
# broken-install: installPhase fails; slow: buildPhase sleeps, to be killed; edit: preConfigure
# edits text.c in place; edit-source: that, with the source change of "source"; wild: the
# Makefile takes every *.c into an installed static library, and there is an extra.c;
# wild-deleted: the same without extra.c; date: a header generated from SOURCE_DATE_EPOCH and
# __DATE__ in util.c, with SOURCE_DATE_EPOCH set; date-source: that, with the source change
# of "source" and a later SOURCE_DATE_EPOCH; debug: compiled with -g and the -frandom-seed
# nixpkgs derives from $out, no strip; debug-install: that, with the postInstall of "install";
# debug-stripped and debug-stripped-install: the same with the debug sections stripped from
# the installed program; renamed-source: the change of "source" in a source whose root
# directory is named cproject-src-2, not cproject-src; configured: the Makefile takes CFLAGS from configure, util.c
# includes the config.h configure writes; configured-loud: that, with a configure flag that
# changes config.h; configured-o2: that, with a configure flag that changes CFLAGS in the
# Makefile; big: make also writes a 70 MB `big.o` (ELF magic, then zeros), more than an
# attachment's limit; big-install and big-source: that, with the change of "install" or of
# "source"); shifted: make also writes a 2.7 MB `data.bin` (text.c, then the numbers up to
# 400000), installed in share/greet; shifted-source: that, with the change of "source", which
# moves every byte of data.bin after the greeting; linked: make also links greet-big (greet
# with big.c, 2 MiB of data) and tool (tool.c and big.c), and archives text.o and big.o into
# libgreet.a, all three installed; linked-source: that, with the change of "source"; included: configure also writes version.mk (VERSION = 1.0), which the Makefile
# includes and util.o's own rule reads; included-bump: that, with configure writing 1.1;
# mk: the Makefile includes rules.mk from the source, which sets CFLAGS and the MARKFLAGS
# util.o's own rule reads; mk-bump: that, with other MARKFLAGS; mk-cflags: with other CFLAGS;
# pieces: util.c copies $out/lib into a buffer at -O2 (16-byte pieces); immediates: the same
# at -O1 (8-byte immediates); pieces-source, immediates-source: that, with the source change of
# "source"; pieces-install, immediates-install: that, with the postInstall of "install";
# libtool-pieces: pieces, built the way libtool lays out a library: util.c and text.c compiled
# into .libs/*.o with a `.lo` record each (make's targets), archived into .libs/libgreet.a
# with a `libgreet.la` record; libtool-pieces-source: that, with the source change of "source";
# env-immediates: the compiler is a script of the source that adds -DLIBDIR from the
# variable GREET_LIBDIR ($out/lib), which no makefile reads (as nixpkgs' compiler wrapper
# adds NIX_CFLAGS_COMPILE), and util.c copies LIBDIR at -O1 (8-byte immediates);
# date-copy: util.c copies __DATE__ into a buffer at -O1 (8-byte immediates), with
# SOURCE_DATE_EPOCH set; date-copy-source: that, with the source change of "source" and a
# later SOURCE_DATE_EPOCH; hook-env: preBuild exports GREET_MARK=$name, which main.o's own
# rule reads (a value derived from a derivation variable by a hook, not by the derivation);
# hook-args: preBuild passes GREET_MARK=$name to make in makeFlagsArray instead;
# hook-unset: hook-env, with postBuild unsetting GREET_MARK (the state after buildPhase does
# not show it); hook-cmdline: preBuild runs `make GREET_MARK=$name main.o` (on make's command
# line only);
# hook-source: preBuild exports GREET_MARK read from the source's mark.txt (mark-1);
# hook-source-changed: that, with mark.txt changed (mark-2) and nothing else;
# untracked: util.h's MARK in util.c, with the Makefile's rules naming no header (dependency
# tracking off), a shipped manual page made from util.c, and two files that are not built:
# other.c, which includes minmax.h, whose opening comment has a line starting `#include this`
# (as gnulib's has), and lone.c, which includes nothing; untracked-header: that, with MARK
# changed; untracked-computed and untracked-computed-header: the same two with other.c
# including minmax.h through a macro; untracked-impl: untracked, with main.c including impl.c
# (no target of the Makefile) through a macro; untracked-impl-source: that, with impl.c changed;
# untracked-configmake: untracked, with make writing configmake.h (LIBDIR, from the
# Makefile's prefix) before it builds the rest, as gnulib's Makefiles do, and util.c
# including it; untracked-direct: untracked, with a shared library compiled and linked from
# util.c and text.c in one command (no object between, as lz4's `liblz4.so: $(SRCFILES)`)
# and installed in $out/lib; untracked-direct-header: that, with MARK changed; untracked-edit:
# untracked, with util.c edited by postPatch; untracked-edit-header: that, with MARK changed;
# input-paths: postBuild leaves the source's store path in the build directory in a short
# file, in the middle of 200 kB of random bytes, as a symlink target and in a file name;
# dev: a second output, `dev`, declared after `out` (as nixpkgs declares it), into which
# postInstall copies util.h; stamped: postInstall writes the time of the build into
# $out/share/greet/stamp, so `out` differs on every rebuild;
# `base` is an earlier build's checkpoint (`baseContext = false`: passed without string
# context), `cache` a development cache directory, `baseTrust` the value of
# `checkpointBaseTrust` (docs/trust.md; unset when null).
# Linked without a GNU build-id, as nixpkgs' gcc does by default: Debian's gcc adds one, and a
# build-id hashes the binary's own store path, which no same-length rewrite can update.
{ mkDrv, variant ? "a", base ? null, name ? "reuse-cproject", cache ? null, salt ? null, baseTrust ? null, baseContext ? true }:
let
  greeting = if builtins.elem variant [ "source" "source-flags" "edit-source" "date-source" "date-copy-source" "renamed-source" "pieces-source" "libtool-pieces-source" "immediates-source" "big-source" "shifted-source" "linked-source" ] then "Hello, changed world" else "Hello, world";
  dated = variant == "date" || variant == "date-source";
  debug = builtins.elem variant [ "debug" "debug-install" "debug-stripped" "debug-stripped-install" ];
  stripped = builtins.elem variant [ "debug-stripped" "debug-stripped-install" ];
  configured = builtins.elem variant [ "configured" "configured-loud" "configured-o2" ];
  untracked = builtins.elem variant [ "untracked" "untracked-header" "untracked-computed" "untracked-computed-header" "untracked-impl" "untracked-impl-source" "untracked-configmake" "untracked-direct" "untracked-direct-header" "untracked-edit" "untracked-edit-header" ];
  computedInclude = variant == "untracked-computed" || variant == "untracked-computed-header";
  included = variant == "included" || variant == "included-bump";
  mk = builtins.elem variant [ "mk" "mk-bump" "mk-cflags" ];
  src = derivation {
    name = if variant == "renamed-source" then "cproject-src-2" else "cproject-src";
    system = builtins.currentSystem;
    builder = "/bin/bash";
    args = [ "-c" ''
      set -e
      export PATH=/usr/bin:/bin
      mkdir -p $out/data
      cd $out
      cat > configure <<'EOS'
      #!/bin/sh
      prefix=/usr/local
      loud=0
      cflags=-O1
      for a in "$@"; do case "$a" in
        --prefix=*) prefix="''${a#--prefix=}";;
        --enable-loud) loud=1;;
        --cflags=*) cflags="''${a#--cflags=}";;
      esac; done
      sed -e "s|@prefix@|$prefix|g" -e "s|@cflags@|$cflags|g" Makefile.in > Makefile
      printf '#define LOUD %s\n' "$loud" > config.h
      echo "configured for $prefix"
      EOS
      chmod +x configure
      cat > Makefile.in <<'EOS'
      prefix = @prefix@
      CFLAGS ?= -O1
      all: greet
      greet: main.o util.o text.o
      	$(CC) -Wl,--build-id=none -o $@ main.o util.o text.o
      %.o: %.c util.h
      	$(CC) $(CFLAGS) -DPREFIX='"$(prefix)"' -c -o $@ $<
      install: greet
      	mkdir -p $(prefix)/bin $(prefix)/share/greet
      	cp greet $(prefix)/bin/greet
      	cp -P data/* $(prefix)/share/greet/
      EOS
      printf '#include "util.h"\nint main(void) { return greet(); }\n' > main.c
      printf '#include <stdio.h>\n#include "util.h"\nint greet(void) { printf("%%s from %%s\\n", text(), PREFIX); return 0; }\n' > util.c
      printf '#include "util.h"\nconst char *text(void) { return "${greeting}"; }\n' > text.c
      printf 'int greet(void);\nconst char *text(void);\n' > util.h
      echo data > data/file.txt
      ${if variant == "tree" then ''
        echo added > data/added.txt
        ln -s added.txt data/link.txt
        printf '\001\002\377changed' > data/blob.bin
        printf '#!/bin/sh\necho hi\n' > data/script.sh
        chmod 755 data/script.sh
      '' else ''
        echo old > data/old.txt
        ln -s file.txt data/link.txt
        printf '\001\002\377binary' > data/blob.bin
        printf '#!/bin/sh\necho hi\n' > data/script.sh
        chmod 644 data/script.sh
      ''}
      ${if variant == "makefile" then "echo '# a comment' >> Makefile.in" else ""}
      ${if configured then ''
        sed -i 's/^CFLAGS ?= -O1$/CFLAGS = @cflags@/' Makefile.in
        printf '#include <stdio.h>\n#include "util.h"\n#include "config.h"\nint greet(void) { printf("%%s from %%s%%s\\n", text(), PREFIX, LOUD ? "!" : ""); return 0; }\n' > util.c
      '' else ""}
      ${if untracked then ''
        sed -i 's/^%.o: %.c util.h$/%.o: %.c/' Makefile.in
        cat >> Makefile.in <<'EOS'
      all: greet.1
      greet.1: util.c
      	echo "regenerated from util.c" > $@
      install: install-man
      install-man: greet.1
      	mkdir -p $(prefix)/share/greet
      	cp greet.1 $(prefix)/share/greet/
      EOS
        echo "shipped manual page" > greet.1
        printf '#include <stdio.h>\n#include "util.h"\nint greet(void) { printf("%%s from %%s%%s\\n", text(), PREFIX, MARK); return 0; }\n' > util.c
        printf '#define MARK "${if builtins.elem variant [ "untracked-header" "untracked-computed-header" "untracked-direct-header" "untracked-edit-header" ] then "!" else ""}"\n' >> util.h
        printf '/* Note:\n   #include this file as the last one.  */\n#define MIN(a, b) ((a) < (b) ? (a) : (b))\n' > minmax.h
        printf '${if computedInclude then "#define OTHER_H \"minmax.h\"\\n#include OTHER_H" else "#include \"minmax.h\""}\nint other(void) { return MIN(1, 2); }\n' > other.c
        printf 'int lone(void) { return 0; }\n' > lone.c
      '' else ""}
      ${if variant == "untracked-direct" || variant == "untracked-direct-header" then ''
        cat >> Makefile.in <<'EOS'
      all: libdirect.so
      libdirect.so: util.c text.c
      	$(CC) $(CFLAGS) -DPREFIX='"$(prefix)"' -fPIC -shared -Wl,--build-id=none -o $@ util.c text.c
      install: install-direct
      install-direct: libdirect.so
      	mkdir -p $(prefix)/lib
      	cp libdirect.so $(prefix)/lib/
      EOS
      '' else ""}
      ${if variant == "untracked-configmake" then ''
        sed -i 's/^all: greet$/all: configmake.h\n\t$(MAKE) all-am\nall-am: greet/' Makefile.in
        cat >> Makefile.in <<'EOS'
      configmake.h: Makefile
      	printf '#define LIBDIR "%s/lib"\n' '$(prefix)' > $@
      EOS
        printf '#include <stdio.h>\n#include "util.h"\n#include "configmake.h"\nint greet(void) { printf("%%s from %%s%%s (%%s)\\n", text(), PREFIX, MARK, LIBDIR); return 0; }\n' > util.c
      '' else ""}
      ${if variant == "untracked-impl" || variant == "untracked-impl-source" then ''
        printf 'const char *impl(void) { return "${if variant == "untracked-impl-source" then "changed" else "first"}"; }\n' > impl.c
        printf '#include <stdio.h>\n#include "util.h"\n#define IMPL "impl.c"\n#include IMPL\nint main(void) { printf("%%s: ", impl()); return greet(); }\n' > main.c
      '' else ""}
      ${if builtins.elem variant [ "libtool-pieces" "libtool-pieces-source" ] then ''
        sed -i -e 's/^greet: main.o util.o text.o$/greet: main.o libgreet.la/' -e 's/-o \$@ main.o util.o text.o$/-o $@ main.o .libs\/libgreet.a/' Makefile.in
        cat >> Makefile.in <<'EOS'
      libgreet.la: util.lo text.lo
      	ar rc .libs/libgreet.a .libs/util.o .libs/text.o
      	echo "old_library='libgreet.a'" > $@
      %.lo: %.c util.h
      	mkdir -p .libs
      	$(CC) $(CFLAGS) -DPREFIX='"$(prefix)"' -c -o .libs/$*.o $<
      	echo "pic_object='.libs/$*.o'" > $@
      util.lo: CFLAGS = -O2
      EOS
      '' else ""}
      ${if builtins.elem variant [ "pieces" "pieces-source" "pieces-install" "libtool-pieces" "libtool-pieces-source" "immediates" "immediates-source" "immediates-install" ] then ''
        ${if builtins.elem variant [ "pieces" "pieces-source" "pieces-install" ] then "echo 'util.o: CFLAGS = -O2' >> Makefile.in" else ""}
        printf '#include <stdio.h>\n#include <string.h>\n#include "util.h"\nchar libdir[128];\nint greet(void) { memcpy(libdir, PREFIX "/lib", sizeof(PREFIX "/lib")); printf("%%s from %%s\\n", text(), libdir); return 0; }\n' > util.c
      '' else ""}
      ${if variant == "env-immediates" then ''
        printf '#!/bin/sh\nexec cc -DLIBDIR="\\"$GREET_LIBDIR\\"" "$@"\n' > envcc
        echo 'CC = sh ./envcc' >> Makefile.in
        printf '#include <stdio.h>\n#include <string.h>\n#include "util.h"\nchar libdir[128];\nint greet(void) { memcpy(libdir, LIBDIR, sizeof(LIBDIR)); printf("%%s from %%s\\n", text(), libdir); return 0; }\n' > util.c
      '' else ""}
      ${if variant == "hook-source" then "echo mark-1 > mark.txt"
        else if variant == "hook-source-changed" then "echo mark-2 > mark.txt" else ""}
      ${if builtins.elem variant [ "hook-env" "hook-args" "hook-unset" "hook-cmdline" "hook-source" "hook-source-changed" ] then ''
        echo "main.o: CFLAGS += -DMARK='\"\$(GREET_MARK)\"'" >> Makefile.in
        printf '#include <stdio.h>\n#include "util.h"\nint main(void) { printf("%%s: ", MARK); return greet(); }\n' > main.c
      '' else ""}
      ${if variant == "date-copy" || variant == "date-copy-source" then ''
        printf '#include <stdio.h>\n#include <string.h>\n#include "util.h"\nchar built_on[16];\nint greet(void) { strcpy(built_on, __DATE__); printf("%%s from %%s, built %%s\\n", text(), PREFIX, built_on); return 0; }\n' > util.c
      '' else ""}
      ${if variant == "side-file" then ''
        cat >> Makefile.in <<'EOS'
      all: side.stamp
      side.stamp:
      	echo "$(prefix)" > side.txt
      	touch side.stamp
      install: install-side
      install-side:
      	mkdir -p $(prefix)/share/greet
      	cp side.txt $(prefix)/share/greet/
      EOS
      '' else ""}
      ${if builtins.elem variant [ "big" "big-install" "big-source" ] then ''
        cat >> Makefile.in <<'EOS'
      all: big.o
      big.o:
      	{ printf '\177ELF'; head -c 70000000 /dev/zero; } > big.o
      EOS
      '' else ""}
      ${if variant == "shifted" || variant == "shifted-source" then ''
        cat >> Makefile.in <<'EOS'
      all: data.bin
      data.bin: text.c
      	{ cat text.c; seq 1 400000; } > data.bin
      install: install-data
      install-data: data.bin
      	mkdir -p $(prefix)/share/greet
      	cp data.bin $(prefix)/share/greet/
      EOS
      '' else ""}
      ${if variant == "wild" || variant == "wild-deleted" then ''
        cat >> Makefile.in <<'EOS'
      OBJS := $(patsubst %.c,%.o,$(wildcard *.c))
      all: libgreet.a
      libgreet.a: $(OBJS)
      	ar rc $@ $^
      install: install-lib
      install-lib: libgreet.a
      	mkdir -p $(prefix)/lib
      	cp libgreet.a $(prefix)/lib/
      EOS
      '' else ""}
      ${if variant == "wild" then "printf 'int extra(void) { return 42; }\n' > extra.c" else ""}
      ${if variant == "linked" || variant == "linked-source" then ''
        printf 'const char big[2 << 20] = { 1 };\n' > big.c
        printf 'extern const char big[];\nint main(void) { return big[0] - 1; }\n' > tool.c
        cat >> Makefile.in <<'EOS'
      all: greet-big tool libgreet.a
      greet-big: main.o util.o text.o big.o
      	$(CC) -Wl,--build-id=none -o $@ main.o util.o text.o big.o
      tool: tool.o big.o
      	$(CC) -Wl,--build-id=none -o $@ tool.o big.o
      libgreet.a: text.o big.o
      	rm -f $@
      	ar rcs $@ text.o big.o
      install: install-linked
      install-linked: greet-big tool libgreet.a
      	mkdir -p $(prefix)/bin $(prefix)/lib
      	cp greet-big tool $(prefix)/bin/
      	cp libgreet.a $(prefix)/lib/
      EOS
      '' else ""}
      ${if included then ''
        cat >> configure <<'EOS'
      printf 'VERSION = ${if variant == "included-bump" then "1.1" else "1.0"}\n' > version.mk
      EOS
        cat >> Makefile.in <<'EOS'
      include version.mk
      util.o: util.c util.h
      	$(CC) $(CFLAGS) -DPREFIX='"$(prefix)"' -DVERSION='"$(VERSION)"' -c -o $@ util.c
      EOS
        printf '#include <stdio.h>\n#include "util.h"\nint greet(void) { printf("%%s from %%s, version %%s\\n", text(), PREFIX, VERSION); return 0; }\n' > util.c
      '' else ""}
      ${if mk then ''
        cat > rules.mk <<'EOS'
      MARKFLAGS = -DMARK='"${if variant == "mk-bump" then "!" else ""}"'
      CFLAGS = ${if variant == "mk-cflags" then "-O2" else "-O1"}
      EOS
        cat >> Makefile.in <<'EOS'
      include rules.mk
      util.o: util.c util.h
      	$(CC) $(CFLAGS) -DPREFIX='"$(prefix)"' $(MARKFLAGS) -c -o $@ util.c
      EOS
        printf '#include <stdio.h>\n#include "util.h"\nint greet(void) { printf("%%s from %%s%%s\\n", text(), PREFIX, MARK); return 0; }\n' > util.c
      '' else ""}
      ${if dated then ''
        cat >> Makefile.in <<'EOS'
      util.o: built.h
      built.h:
      	echo "#define BUILT \"$$(date -u -d @$$SOURCE_DATE_EPOCH +%Y-%m-%d)\"" > $@
      EOS
        printf '#include <stdio.h>\n#include "util.h"\n#include "built.h"\nint greet(void) { printf("%%s from %%s, built %%s (%%s)\\n", text(), PREFIX, BUILT, __DATE__); return 0; }\n' > util.c
      '' else ""}
      # Not a coreutils command (chmod, sed, cat) last: bash would exec it, and it closes
      # stderr before exiting, which Nix reads as the builder's end and kills it
      # (NixOS/nix#2176).
      exit 0
    '' ];
  };
in
mkDrv ({
  inherit name;
  outputs = if variant == "dev" then [ "out" "dev" "checkpoint" ] else [ "out" "checkpoint" ];
  inherit src;
  buildFlags = if variant == "flags" || variant == "source-flags" then [ "CFLAGS=-O2" ] else [ ];
  configureFlags = if variant == "configured-loud" then [ "--enable-loud" ]
    else if variant == "configured-o2" then [ "--cflags=-O2" ] else null;
  postInstall = if builtins.elem variant [ "install" "debug-install" "debug-stripped-install" "big-install" "pieces-install" "immediates-install" ] then ''
    ${if stripped then "strip -S $out/bin/greet" else ""}
    echo "installed differently" > $out/share/greet/extra.txt
  '' else if stripped then ''
    strip -S $out/bin/greet
  '' else if variant == "dev" then ''
    mkdir -p $dev/include
    cp util.h $dev/include/
  '' else if variant == "stamped" then ''
    date +%s%N > $out/share/greet/stamp
  '' else if variant == "broken-install" then ''
    echo "this installPhase fails"
    false
  '' else null;
  # The debug variants keep gcc's debug information unless they strip it themselves: the real
  # stdenv's fixupPhase would strip it (`strip -S`), tests/stdenv has no strip step.
  dontStrip = if debug then true else null;
  checkpointCache = cache;
  # Fresh derivations for every test run (the same within one run).
  testSalt = salt;
  preBuild = if variant == "slow" then "sleep 8"
    # What nixpkgs' compiler wrapper passes on every compile (reproducible-builds.sh derives
    # the seed from $out), with debug information as an autotools default gives.
    else if debug then ''buildFlagsArray+=("CFLAGS=-g -O1 -frandom-seed=''${out:11:10}")''
    else if variant == "hook-env" || variant == "hook-unset" then ''export GREET_MARK="$name"''
    else if variant == "hook-args" then ''makeFlagsArray+=("GREET_MARK=$name")''
    else if variant == "hook-cmdline" then ''make GREET_MARK="$name" main.o''
    else if variant == "hook-source" || variant == "hook-source-changed" then ''export GREET_MARK="$(cat mark.txt)"''
    else null;
  postBuild = if variant == "hook-unset" then "unset GREET_MARK"
    # The store path of an input where a checkpoint would show it as it is: a short file, a
    # file that does not compress, a symlink target, a file name.
    else if variant == "input-paths" then ''
      echo "$src" > input.txt
      { head -c 100000 /dev/urandom; echo "$src"; head -c 100000 /dev/urandom; } > noise.bin
      ln -s "$src/configure" input-link
      touch "''${src#/nix/store/}.stamp"
    '' else null;
  # untracked-edit(-header): the source as untracked(-header)'s, with util.c edited by
  # postPatch (so newer than the shipped page, which make then remakes from it, in a clean
  # build too).
  postPatch = if variant == "untracked-edit" || variant == "untracked-edit-header"
    then "echo 'int edited_unit;' >> util.c" else null;
  preConfigure = if variant == "edit" || variant == "edit-source" then ''
    sed -i 's/Hello/Howdy/' text.c
  '' else null;
  # Nix's stdenv derives it from the newest file of the source (a new tarball moves it); here
  # the derivation sets it, which reaches the build the same way.
  GREET_LIBDIR = if variant == "env-immediates" then "${placeholder "out"}/lib" else null;
  SOURCE_DATE_EPOCH = if variant == "date" || variant == "date-copy" then "1600000000"
    else if variant == "date-source" || variant == "date-copy-source" then "1700000000" else null;
  # baseContext = false: the path as a plain string, not an input (tests/gc.rs: a base that
  # was collected, or never was an input, is missing in the sandbox).
  checkpointBase = if base == null then null else if baseContext then builtins.storePath base else base;
} // (if baseTrust == null then { } else { checkpointBaseTrust = baseTrust; }))
