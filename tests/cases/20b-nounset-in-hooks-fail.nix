# Setup hooks are sourced with nounset on: an undefined read in a hook fails
# setup (before any phase).
{ mkDrv, ... }:
mkDrv {
  name = "case-20b";
  dontUnpack = true;
  nativeBuildInputs = [
    (builtins.toFile "reads-undefined-hook.sh" ''
      echo "hook reads [$undefinedInHook]"
    '')
  ];
  installPhase = "mkdir -p $out";
}
