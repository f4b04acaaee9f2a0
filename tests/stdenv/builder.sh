# Builder of the test stdenv derivation: writes $out/setup as the nixpkgs stdenv
# does (a preamble naming the shell, the initial path and the default inputs,
# then the stdenv-level preHook, then setup.sh).  Runs under `bash -e`.
PATH=
for dir in $initialPath; do
    PATH=${PATH:+$PATH:}${dir%/}/bin
done
export PATH

mkdir -p "$out"
{
    printf 'export SHELL=%s\n' "$shell"
    printf 'initialPath="%s"\n' "$initialPath"
    printf 'defaultNativeBuildInputs="%s"\n' "$defaultNativeBuildInputs"
    printf 'defaultBuildInputs="%s"\n' "$defaultBuildInputs"
    printf '%s\n' "$preHook"
    cat -- "$setup"
} >"$out/setup"
