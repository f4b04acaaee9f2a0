# An autotools-like package through every default phase (check, installCheck and
# dist included), with a hook phase added to preConfigurePhases at setup time.
{ mkDrv, ... }:
mkDrv {
  name = "case-01";
  src = ./src/autotools-like;
  nativeBuildInputs = [ ./lib/observe.sh ./lib/update-config-scripts.sh ];
  doCheck = true;
  doInstallCheck = true;
  doDist = true;
  makeFlags = [ "CC=cc" ];
  postInstall = ''
    cp config.guess $out/share/hello/
    obsVars configureFlags installFlags prefix foundMakefile checkTarget \
      configureScript preConfigurePhases phases sourceRoot srcs curSrc
    obsShellState
  '';
  postInstallCheck = ''
    cp installcheck.out $out/share/hello/
  '';
}
