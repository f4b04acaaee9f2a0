# Options left by a phase carry over: `set +e` (a later failure is ignored),
# `set -u`, dotglob and extglob; an extglob function defined in one phase is
# called in a later one.  dontFixup: the real nixpkgs fixup hooks read unset
# variables and would fail under the `set -u` left by buildPhase.
{ mkDrv, ... }:
mkDrv {
  name = "case-21a";
  src = ./src/tiny;
  dontFixup = true;
  nativeBuildInputs = [ ./lib/observe.sh ];
  configurePhase = ''
    set +e
    shopt -s dotglob extglob
    touch .hidden
  '';
  buildPhase = ''
    onlyReadme() { local f; for f in !(*.hidden|x); do echo "$f"; done; }
    false
    echo "survived false: $?" >"$NIX_BUILD_TOP/notes"
    set -u
  '';
  installPhase = ''
    mkdir -p $out
    cp "$NIX_BUILD_TOP/notes" $out/notes
    echo "glob:" * >>$out/notes
    onlyReadme >>$out/notes
    echo "defaulted: ''${neverSet-default}" >>$out/notes
    obsShellState
  '';
}
