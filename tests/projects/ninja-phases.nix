# buildPhase and installPhase as nixpkgs' ninja setup hook provides them, for projects that
# CMake or Meson configured for ninja (`-v`: the log shows every command ninja runs, which
# the tests count).
{
  buildPhase = ''
    runHook preBuild
    ninja -j"$NIX_BUILD_CORES" -v
    runHook postBuild
  '';
  installPhase = ''
    runHook preInstall
    ninja -j"$NIX_BUILD_CORES" -v install
    runHook postInstall
  '';
}
