# A custom `builder` script (test fixture): source-stdenv.sh runs it after
# sourcing $stdenv/setup, instead of default-builder.sh.  It runs two phases
# of its own and records the state it sees.
mkdir -p "$out"
{
    echo "custom builder: \$1=$1 flags=$-"
    declare -F genericBuild runPhase
    echo "SHELL=$SHELL PATH=$PATH"
} >"$out/custom"
phases="buildPhase installPhase"
genericBuild
