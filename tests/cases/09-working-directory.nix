# A phase cds into a build subdirectory reached through a symlink; later phases
# run there with the logical path kept (pwd vs pwd -P), OLDPWD (cd -) and the
# pushd stack carried over.
{ mkDrv, ... }:
mkDrv {
  name = "case-09";
  src = ./src/tiny;
  nativeBuildInputs = [ ./lib/observe.sh ];
  configurePhase = ''
    mkdir -p real/build-dir
    ln -s real/build-dir linked
    cd linked
  '';
  buildPhase = ''
    mkdir -p $out
    obs "logical cwd in build" pwd
    obs "physical cwd in build" pwd -P
    obs "PWD and OLDPWD in build" echo "$PWD $OLDPWD"
    pushd "$NIX_BUILD_TOP" >/dev/null
    pushd /tmp >/dev/null
  '';
  installPhase = ''
    obs "dirs in install" dirs -p
    popd >/dev/null
    obs "cwd after popd" pwd
    cd -
    obs "cwd after cd -" pwd
    obsVars DIRSTACK PWD OLDPWD
  '';
}
