# Dependency packages for case 29, built with mkDrv (so with the builder under
# test too).  `tool` has a setup hook using preConfigureHooks,
# fixupOutputHooks and addEnvHooks, and propagates `lib` through
# nix-support/propagated-build-inputs; `lib` has its own setup hook.
{ mkDrv }:
rec {
  lib = mkDrv {
    name = "case-29-lib";
    dontUnpack = true;
    setupHook = builtins.toFile "lib-setup-hook.sh" ''
      libHookSourced+=("lib at $hostOffset,$targetOffset")
    '';
    installPhase = ''
      mkdir -p $out/lib $out/share/case-29
      echo marker >$out/lib/marker
    '';
  };
  tool = mkDrv {
    name = "case-29-tool";
    dontUnpack = true;
    propagatedBuildInputs = [ lib ];
    setupHook = builtins.toFile "tool-setup-hook.sh" ''
      toolHookSourced+=("tool at $hostOffset,$targetOffset")
      preConfigureHooks+=(toolPreConfigure)
      fixupOutputHooks+=(toolFixupOutput)
      toolPreConfigure() { echo "toolPreConfigure in $curPhase" >>"$NIX_BUILD_TOP/hook-log"; }
      toolFixupOutput() { echo "toolFixupOutput for $prefix" >>"$NIX_BUILD_TOP/hook-log"; }
      toolEnvHook() {
        envHookCalls+=("$1 host=$depHostOffset target=$depTargetOffset")
      }
      addEnvHooks "$hostOffset" toolEnvHook
    '';
    installPhase = ''
      mkdir -p $out/bin
      printf '#!/bin/sh\necho tool-ran\n' >$out/bin/case-29-tool
      chmod +x $out/bin/case-29-tool
    '';
  };
  hostLib = mkDrv {
    name = "case-29-hostlib";
    dontUnpack = true;
    installPhase = ''
      mkdir -p $out/bin $out/lib
      printf '#!/bin/sh\necho hostlib\n' >$out/bin/case-29-hostlib
      chmod +x $out/bin/case-29-hostlib
    '';
  };
}
