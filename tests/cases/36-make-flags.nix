# Extra: make flags from makeFlags, makeFlagsArray (elements with spaces, set
# in preBuild), buildFlags, installFlags; parallel building off.
{ mkDrv, ... }:
let
  makefile = builtins.toFile "Makefile" ''
    all:
    	@printf '<%s>\n' "$(ONE)" "$(TWO)" "$(THREE)" "$(SHELL)" "$(PREFIX)" >flags.txt
    install:
    	mkdir -p $(PREFIX)
    	cp flags.txt $(PREFIX)/
    	@printf '<%s>\n' "$(INST)" >>$(PREFIX)/flags.txt
  '';
in
mkDrv {
  name = "case-36";
  dontUnpack = true;
  enableParallelBuilding = false;
  makeFlags = [ "ONE=1" "PREFIX=$(out)" ];
  buildFlags = "TWO=2";
  installFlags = [ "INST=installing" ];
  preBuild = ''
    cp ${makefile} Makefile
    makeFlagsArray+=("THREE=three with spaces")
  '';
}
