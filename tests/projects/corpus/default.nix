# The corpus (bench/corpus.sh; scripts/test.sh runs its CI subset): upstream projects from
# Debian 12's orig tarballs (pinned in sources.lock as `corpus-<name>`, no Debian patches),
# built on the stdenv at `stdenvNix` with the compiler wrapper, as tests/projects/default.nix
# builds hello, lua and zstd, and with the same arguments (`builder`, `benchSalt`,
# `checkpoint`, `variant`, `base`; see that file).
#
# Every project names one C (or C++) file compiled into what it installs (`file`) and one
# header included by some of its compile units (`header`). The variants (see ./variant.nix)
# append one line to either, add a `postInstall`, or bump the version in `name` (same
# length, or one character longer) with the source unchanged.
# Build dependencies come from the host (Debian's -dev packages, bound into the sandbox with
# /usr), as cmake, ninja, meson, bison and flex do.
{ stdenvNix, builder ? null, sources, benchSalt ? null, checkpoint ? false
, variant ? "base", base ? null }:
let
  stdenv = import ../../nix/with-cc-wrapper.nix { stdenv = import stdenvNix {
    realBuilder = if builder == null then null else "${builder}";
    builderArgs = { attrs, stockArgs }: stockArgs;
  }; };
  mkDrv = import ../mk-drv.nix {
    inherit (stdenv) mkDrv;
    inherit benchSalt base;
    checkpoint = checkpoint && builder != null;
  };
  src = name: import ../orig-tarball.nix sources "corpus-${name}";

  # project NAME ATTRS: ATTRS (with `file`, `header` and `system`, the build system, for
  # the report) as a derivation of the variant asked for; `corpus` holds what
  # bench/corpus.sh reads of them (and `name`, which variant.nix takes).
  project = name: attrs:
    let
      v = import ./variant.nix { inherit variant; inherit (attrs) file header name; };
      own = removeAttrs attrs [ "file" "header" "system" ];
      join = a: b: if a == "" then b else if b == "" then a else a + "\n" + b;
    in
    (mkDrv (own // {
      src = src name;
      # One line on the log per compile (tests/nix/cc-wrapper/cc-wrapper.sh).
      NIX_CC_WRAPPER_TRACE = "1";
      postPatch = join (own.postPatch or "") (v.postPatch or "");
      postInstall = join (own.postInstall or "") (v.postInstall or "");
    } // (if v ? name then { inherit (v) name; } else { })))
    // { corpus = { inherit (attrs) file header system name; }; };

  ninja = import ../ninja-phases.nix;
  cmake = { generator ? "Ninja", dir ? ".", flags ? [ ] }: {
    configurePhase = ''
      runHook preConfigure
      cmake -S ${dir} -B build -G "${generator}" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$out" -DCMAKE_INSTALL_LIBDIR=lib \
        -DCMAKE_SKIP_BUILD_RPATH=ON ${toString flags}
      cd build
      runHook postConfigure
    '';
  } // (if generator == "Ninja" then ninja else { });
  meson = flags: {
    configurePhase = ''
      runHook preConfigure
      meson setup build --prefix="$out" --libdir=lib --buildtype=plain \
        --wrap-mode=nodownload ${toString flags}
      cd build
      runHook postConfigure
    '';
    checkPhase = ''
      runHook preCheck
      meson test --num-processes "$NIX_BUILD_CORES" --print-errorlogs
      runHook postCheck
    '';
  } // ninja;
in
{
  # Plain make with its own (not autoconf) configure; shared and static library; `make
  # check` runs its example programs.
  zlib = project "zlib" {
    name = "zlib-1.2.13"; system = "configure (own) + make";
    doCheck = true;
    file = "adler32.c"; header = "inftrees.h";
  };
  # Plain make, no configure; the Makefile's `all` runs the compression tests itself;
  # absolute symlinks made relative by fixup. The Makefile records no header dependency.
  bzip2 = project "bzip2" {
    name = "bzip2-1.0.8"; system = "make";
    dontConfigure = true;
    makeFlags = [ "PREFIX=${placeholder "out"}" ];
    file = "bzip2.c"; header = "bzlib_private.h";
  };
  lz4 = project "lz4" {
    name = "lz4-1.9.4"; system = "make";
    dontConfigure = true;
    makeFlags = [ "PREFIX=${placeholder "out"}" ];
    file = "programs/lz4cli.c"; header = "lib/lz4hc.h";
  };
  # Plain configure (not autoconf) + make; `make check` runs its test suite.
  ed = project "ed" {
    name = "ed-1.19"; system = "configure (own) + make";
    doCheck = true;
    file = "main_loop.c"; header = "carg_parser.h";
  };
  # Autotools, libtool and shared libraries, four outputs (the multiple-outputs hook passes
  # --includedir=$dev/include, --libdir=$lib/lib, --mandir=$man/share/man).
  xz = project "xz" {
    name = "xz-5.4.1"; system = "autotools + libtool";
    outputs = [ "out" "dev" "lib" "man" ];
    file = "src/xz/main.c"; header = "src/xz/private.h";
  };
  sed = project "sed" {
    name = "sed-4.9"; system = "autotools (gnulib), texinfo";
    file = "sed/execute.c"; header = "sed/sed.h";
  };
  gzip = project "gzip" {
    name = "gzip-1.12"; system = "autotools (gnulib), texinfo";
    file = "gzip.c"; header = "lzw.h";
  };
  # configmake.h, written by make from configure's results, holds $out's directories.
  diffutils = project "diffutils" {
    name = "diffutils-3.8"; system = "autotools (gnulib), texinfo";
    file = "src/diff.c"; header = "src/diff.h";
  };
  m4 = project "m4" {
    name = "m4-1.4.19"; system = "autotools (gnulib), texinfo";
    # Not src/m4.c: doc/Makefile.am remakes m4.1 from it with help2man, which the host lacks
    # (a clean build of the edited source fails the same way).
    file = "src/output.c"; header = "src/m4.h";
  };
  grep = project "grep" {
    name = "grep-3.8"; system = "autotools (gnulib), texinfo";
    file = "src/grep.c"; header = "src/search.h";
  };
  patch = project "patch" {
    name = "patch-2.7.6"; system = "autotools (gnulib)";
    file = "src/patch.c"; header = "src/common.h";
  };
  # Generated sources: the parser and scanner are removed from the tarball, so bison and
  # flex (from the host) write them again.
  bc = project "bc" {
    name = "bc-1.07.1"; system = "autotools, bison + flex, texinfo";
    postPatch = "rm bc/bc.c bc/bc.h bc/scan.c";
    file = "bc/main.c"; header = "bc/global.h";
  };
  indent = project "indent" {
    name = "indent-2.2.12"; system = "autotools, texinfo";
    file = "src/indent.c"; header = "src/indent.h";
  };
  cpio = project "cpio" {
    name = "cpio-2.13"; system = "autotools (gnulib), texinfo";
    file = "src/main.c"; header = "src/cpiohdr.h";
    # cpio 2.13 defines `program_name` twice, which links only with common symbols (gcc 10
    # made -fno-common the default); nixpkgs builds it with -fcommon too.
    NIX_CFLAGS_COMPILE = "-fcommon";
    # Debian's orig tarball (+dfsg) leaves the manual (GFDL) out, and doc/Makefile still
    # makes cpio.info from it: a one-node manual of ours stands in.
    postPatch = ''
      cat > doc/cpio.texi <<'EOF'
      \input texinfo
      @setfilename cpio.info
      @settitle GNU cpio
      @node Top
      @top GNU cpio
      The manual is not in this source.
      @bye
      EOF
    '';
  };
  # Autoconf without automake; a patch of our own (`patches`).
  less = project "less" {
    name = "less-590"; system = "autoconf + make, patches";
    patches = [ ./less-version.patch ];
    file = "main.c"; header = "less.h";
  };
  libffi = project "libffi" {
    name = "libffi-3.4.4"; system = "autotools + libtool, assembler";
    file = "src/prep_cif.c"; header = "include/ffi_common.h";
  };
  gdbm = project "gdbm" {
    name = "gdbm-1.23"; system = "autotools + libtool";
    configureFlags = [ "--without-readline" ];
    file = "src/gdbmopen.c"; header = "src/gdbmdefs.h";
  };
  # configure writes $out's directories into config.h (PKG_DEFAULT_PATH and others).
  pkgconf = project "pkgconf" {
    name = "pkgconf-1.8.1"; system = "autotools + libtool, $out in config.h";
    file = "cli/main.c"; header = "libpkgconf/bsdstubs.h";
  };
  # Autotools + libtool, zlib from the host, pnglibconf.h generated by awk; three outputs,
  # the programs in `dev` (as nixpkgs has it: `libpng16-config` names `dev`'s include
  # directory and `out`'s library, so in `out` the two outputs would refer to each other).
  libpng = project "libpng" {
    name = "libpng-1.6.39"; system = "autotools + libtool, generated header";
    outputs = [ "out" "dev" "man" ];
    outputBin = "dev";
    file = "pngread.c"; header = "pngstruct.h";
  };
  # CMake for ninja, with its test suite (ctest).
  expat = project "expat" ({
    name = "expat-2.5.0"; system = "CMake (ninja), ctest";
    doCheck = true;
    checkPhase = ''
      runHook preCheck
      ctest -j"$NIX_BUILD_CORES" --output-on-failure
      runHook postCheck
    '';
    file = "expat/xmlwf/xmlwf.c"; header = "expat/lib/xmltok.h";
  } // cmake { dir = "expat"; flags = [ "-DEXPAT_BUILD_DOCS=OFF" ]; });
  cmark = project "cmark" ({
    name = "cmark-0.30.2"; system = "CMake (ninja)";
    file = "src/main.c"; header = "src/houdini.h";
  } // cmake { flags = [ "-DCMARK_TESTS=OFF" ]; });
  libyaml = project "libyaml" ({
    name = "libyaml-0.2.5"; system = "CMake (make)";
    enableParallelBuilding = true;
    file = "src/api.c"; header = "src/yaml_private.h";
  } // cmake { generator = "Unix Makefiles"; flags = [ "-DBUILD_SHARED_LIBS=ON" ]; });
  json-c = project "json-c" ({
    name = "json-c-0.16"; system = "CMake (make)";
    enableParallelBuilding = true;
    file = "json_util.c"; header = "printbuf.h";
  } // cmake { generator = "Unix Makefiles"; flags = [ "-DBUILD_TESTING=OFF" ]; });
  # C++ (a shared library).
  fmt = project "fmt" ({
    name = "fmt-9.1.0"; system = "CMake (ninja), C++";
    file = "src/os.cc"; header = "include/fmt/os.h";
  } // cmake { flags = [ "-DFMT_TEST=OFF" "-DFMT_DOC=OFF" "-DBUILD_SHARED_LIBS=ON" ]; });
  # Meson; tables generated at build time by programs it builds first; `meson test`.
  fribidi = project "fribidi" ({
    name = "fribidi-1.0.8"; system = "Meson, generated sources, meson test";
    doCheck = true;
    file = "bin/fribidi-main.c"; header = "lib/common.h";
  } // meson [ "-Ddocs=false" ]);
  pixman = project "pixman" ({
    name = "pixman-0.42.2"; system = "Meson";
    file = "pixman/pixman-region16.c"; header = "pixman/pixman-combine32.h";
  } // meson [ "-Dtests=disabled" "-Dgtk=disabled" "-Dlibpng=disabled" "-Dopenmp=disabled" ]);
  # A Perl XS module: `perl Makefile.PL` (ExtUtils::MakeMaker) writes the Makefile, as
  # nixpkgs' buildPerlPackage runs it; the compiler is the wrapper's, not Perl's own.
  xsaccessor = project "xsaccessor" {
    name = "perl-Class-XSAccessor-1.19"; system = "perl Makefile.PL (XS)";
    configurePhase = ''
      runHook preConfigure
      perl Makefile.PL PREFIX="$out" INSTALLDIRS=site CC=gcc LD=gcc
      runHook postConfigure
    '';
    # MakeMaker appends the install time to perllocal.pod (nixpkgs removes it too).
    preFixup = ''find "$out" -name perllocal.pod -delete'';
    file = "cxsa_memory.c"; header = "cxsa_memory.h";
  };
  # Perl's `./Configure` (not autoconf) writes the Makefile and configdata.pm; perlasm
  # writes assembler at build time; shared and static libraries, the `openssl` program, two
  # outputs (headers and pkg-config files moved to `dev` by fixup). crypto/buildinf.h, which
  # cversion.c includes, is generated with the compiler's flags and a `built on:` date from
  # SOURCE_DATE_EPOCH. `build_sw`/`install_sw` leave the manuals out (3.0 has no `no-docs`),
  # `no-tests` the test programs.
  openssl = project "openssl" {
    name = "openssl-3.0.20"; system = "perl Configure + make, perlasm";
    outputs = [ "out" "dev" ];
    configurePhase = ''
      runHook preConfigure
      perl ./Configure linux-x86_64 --prefix="$out" --libdir=lib --openssldir=etc/ssl \
        shared no-tests
      runHook postConfigure
    '';
    enableParallelBuilding = true;
    buildFlags = [ "build_sw" ];
    installTargets = "install_sw install_ssldirs";
    # The pkg-config files name `prefix`'s include directory, which fixup moves to `dev`.
    postInstall = ''
      sed -i "s|^includedir=.*|includedir=$dev/include|" "$out"/lib/pkgconfig/*.pc
    '';
    file = "crypto/cversion.c"; header = "crypto/x509/x509_local.h";
  };
}
