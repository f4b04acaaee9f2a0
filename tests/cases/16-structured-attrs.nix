# __structuredAttrs: .attrs.sh scalars, arrays and maps in every phase, not
# exported; env.* exported; outputs a map; NIX_ATTRS_*_FILE re-pointed into the
# build directory (Nix 2.8 names the out-of-sandbox path).
{ mkDrv, ... }:
mkDrv {
  name = "case-16";
  __structuredAttrs = true;
  outputs = [ "out" "dev" ];
  dontUnpack = true;
  nativeBuildInputs = [ ./lib/observe.sh ];
  # dev refers to out (propagated-build-inputs); observations go to dev.
  preHook = ''obsOut=$dev'';
  aString = "a string";
  aList = [ "x" "y z" "" ];
  anAttrs = { key = "value"; "other key" = "other"; };
  aBool = true;
  aFalse = false;
  anInt = 42;
  env.EXPORTED_FROM_ENV = "yes";
  configurePhase = ''
    obsVars aString aList anAttrs aBool aFalse anInt outputs __structuredAttrs
  '';
  buildPhase = ''
    aList+=("added in build")
  '';
  installPhase = ''
    mkdir -p $out $dev
    obsVars aList NIX_ATTRS_JSON_FILE NIX_ATTRS_SH_FILE EXPORTED_FROM_ENV out dev
    obs "attrs files exist" test -f "$NIX_ATTRS_JSON_FILE" -a -f "$NIX_ATTRS_SH_FILE"
    obs "child sees" bash -c 'echo "aString=''${aString-unset} env=''${EXPORTED_FROM_ENV-unset} out=''${out:+set}"'
    obs "output names" getAllOutputNames
    obsExports
  '';
}
