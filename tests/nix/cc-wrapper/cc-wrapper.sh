#!/bin/bash
# The compiler driver @prog@, given the build's flags: NIX_CFLAGS_COMPILE_BEFORE and
# NIX_CFLAGS_COMPILE on every call, and on calls that link NIX_CFLAGS_LINK, NIX_LDFLAGS_BEFORE
# and NIX_LDFLAGS (each linker word as -Wl,WORD, -L/DIR as is), for every role this wrapper
# serves (roles.bash). `-B@out@/bin/` makes the driver run the wrapped ld.
set -eu -o pipefail

source @out@/nix-support/roles.bash

args=("$@")

# Does this call link? Not with -c/-S/-E/-M/-MM, not for a header, and not without any
# operand (`gcc --version`, `gcc -v`: linker flags would make gcc ask for input files).
links=1
operands=0
expectHeaderLang=0
for arg in "$@"; do
    if ((expectHeaderLang)); then
        [[ $arg == *-header ]] && links=0
        expectHeaderLang=0
        continue
    fi
    case $arg in
        -c | -S | -E | -M | -MM) links=0 ;;
        -x*-header) links=0 ;;
        -x) expectHeaderLang=1 ;;
        -?*) ;;
        *) operands=1 ;;
    esac
done
((operands)) || links=0

# NIX_ENFORCE_NO_NATIVE: -march=native and the like would tie the result to this machine.
if [[ $(roleFlag NIX_ENFORCE_NO_NATIVE) == 1 ]]; then
    kept=()
    for arg in ${args[@]+"${args[@]}"}; do
        if [[ $arg == -m*=native ]]; then
            echo "warning: skipping impure flag $arg because NIX_ENFORCE_NO_NATIVE is set" >&2
        else
            kept+=("$arg")
        fi
    done
    args=(${kept[@]+"${kept[@]}"})
fi

# Word-split on purpose: these variables are lists of flags, as in nixpkgs.
# shellcheck disable=SC2206
before=($(roleWords NIX_CFLAGS_COMPILE_BEFORE))
# shellcheck disable=SC2206
after=(-B@out@/bin/ $(roleWords NIX_CFLAGS_COMPILE))

if ((links)); then
    # shellcheck disable=SC2046
    kind=$(linkKind $(roleWords NIX_LDFLAGS_BEFORE) ${args[@]+"${args[@]}"} $(roleWords NIX_CFLAGS_LINK) $(roleWords NIX_LDFLAGS))
    # nixpkgs' gcc writes no build-id note unless asked (NIX_SET_BUILD_ID, see ld-wrapper.sh);
    # Debian's gcc always asks ld for one. Turn it off first, so any later --build-id wins.
    if [[ $(roleFlag NIX_SET_BUILD_ID) != 1 ]]; then
        before+=(-Wl,--build-id=none)
    fi
    mapfile -t words < <(withoutRpath "$kind" $(roleWords NIX_LDFLAGS_BEFORE))
    for word in ${words[@]+"${words[@]}"}; do before+=("-Wl,$word"); done
    mapfile -t words < <(withoutRpath "$kind" $(roleWords NIX_CFLAGS_LINK))
    after+=(${words[@]+"${words[@]}"})
    mapfile -t words < <(withoutRpath "$kind" $(roleWords NIX_LDFLAGS))
    for word in ${words[@]+"${words[@]}"}; do
        if [[ $word == -L/* ]]; then after+=("$word"); else after+=("-Wl,$word"); fi
    done
    # The wrapped ld then adds only the run paths of the libraries linked (ld-wrapper.sh).
    export NIX_CC_WRAPPER_LINK_KIND_@salt@="$kind"
fi

# `gcc -v` alone prints the version; any flag added would turn it into a failed compile.
if [[ $* == -v ]]; then
    before=()
    after=()
fi

# NIX_CC_WRAPPER_TRACE=1 (bench/corpus.sh counts compiler runs): one line per compile
# (-c or -S) on the build log, which the sandbox's process 1 (the builder) holds as stderr;
# not on the compiler's own stderr, which configure checks capture and compare.
if [[ ${NIX_CC_WRAPPER_TRACE-} == 1 ]] && ((!links && operands)) && [[ " $* " == *" -c "* || " $* " == *" -S "* ]]; then
    echo "cc-wrapper-trace: compile $*" >/proc/1/fd/2 2>/dev/null || true
fi

debugWrapper @prog@ ${before[@]+"${before[@]}"} ${args[@]+"${args[@]}"} ${after[@]+"${after[@]}"}
exec @prog@ ${before[@]+"${before[@]}"} ${args[@]+"${args[@]}"} ${after[@]+"${after[@]}"}
