# dont*/do* flags set by an earlier phase are honoured when the later phase
# starts: buildPhase skipped, checkPhase and installCheckPhase enabled,
# fixupPhase skipped, distPhase enabled.
{ mkDrv, ... }:
mkDrv {
  name = "case-12";
  src = ./src/tiny;
  preConfigure = ''
    dontBuild=1
    doCheck=1
    doInstallCheck=1
    dontFixup=1
    doDist=yes
  '';
  buildPhase = "exit 3";
  checkPhase = ''echo check >>"$NIX_BUILD_TOP/ran"'';
  installPhase = ''
    mkdir -p $out
    echo install >>"$NIX_BUILD_TOP/ran"
  '';
  fixupPhase = "exit 4";
  installCheckPhase = ''echo installCheck >>"$NIX_BUILD_TOP/ran"'';
  distPhase = ''
    echo dist >>"$NIX_BUILD_TOP/ran"
    cp "$NIX_BUILD_TOP/ran" $out/ran
  '';
}
