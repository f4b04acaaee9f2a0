# Setup hooks of a nativeBuildInputs package (preConfigureHooks,
# fixupOutputHooks, addEnvHooks) and inputs propagated through nix-support
# files; strictDeps off: env hooks run on every dependency, host inputs' bin/ on PATH.
{ mkDrv, ... }:
let pkgs = import ./lib/hook-packages.nix { inherit mkDrv; };
in
mkDrv {
  name = "case-29a";
  dontUnpack = true;
  strictDeps = false;
  nativeBuildInputs = [ ./lib/observe.sh pkgs.tool ];
  buildInputs = [ pkgs.hostLib ];
  installPhase = ''
    mkdir -p $out/bin
    echo "#!/bin/sh" >$out/bin/script
    chmod +x $out/bin/script
    obsVars pkgsBuildBuild pkgsBuildHost pkgsBuildTarget pkgsHostHost pkgsHostTarget pkgsTargetTarget
    obsVars envBuildHostHooks envHostTargetHooks preConfigureHooks fixupOutputHooks
    obsVars envHookCalls toolHookSourced libHookSourced PATH HOST_PATH XDG_DATA_DIRS
    obs "tool on PATH" case-29-tool
    obs "hostlib on PATH" type -P case-29-hostlib
  '';
  postFixup = ''
    cp "$NIX_BUILD_TOP/hook-log" $out/hook-log
  '';
}
