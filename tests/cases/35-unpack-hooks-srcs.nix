# Extra: two sources in srcs, one unpacked by an unpackCmdHooks entry (a custom
# ".note" format), one a directory; sourceRoot picked among new directories.
{ mkDrv, ... }:
mkDrv {
  name = "case-35";
  srcs = [
    (builtins.toFile "notes.note" "a note to unpack\n")
    ./src/tiny
  ];
  sourceRoot = "tiny";
  nativeBuildInputs = [
    ./lib/observe.sh
    (builtins.toFile "note-unpacker-hook.sh" ''
      unpackCmdHooks+=(_unpackNote)
      _unpackNote() {
        if [[ $1 != *.note ]]; then return 1; fi
        mkdir -p notes
        cp "$1" notes/note.txt
      }
    '')
  ];
  installPhase = ''
    mkdir -p $out
    cp ../notes/note.txt $out/
    obsVars srcs curSrc sourceRoot unpackCmdHooks
    obs "build top" ls -A "$NIX_BUILD_TOP"
  '';
}
