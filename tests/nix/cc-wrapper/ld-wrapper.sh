#!/bin/bash
# The linker @prog@, given the build's flags. Called directly: NIX_LDFLAGS_BEFORE first and
# NIX_LDFLAGS last (for every role this wrapper serves, roles.bash). Called by the wrapped
# compiler (which passed those already as -Wl, flags and told us the link kind): neither
# again. Both ways: NIX_LDFLAGS_AFTER last, then `-rpath DIR` for each store directory given
# with -L (or holding a shared library named by path) that holds a library this link names,
# unless NIX_DONT_SET_RPATH; `--build-id` when NIX_SET_BUILD_ID is set.
set -eu -o pipefail

source @out@/nix-support/roles.bash

args=("$@")
before=()
after=()

fromCc=${NIX_CC_WRAPPER_LINK_KIND_@salt@:-}
unset NIX_CC_WRAPPER_LINK_KIND_@salt@
if [[ -n $fromCc ]]; then
    kind=$fromCc
else
    kind=$(linkKind "$@")
    mapfile -t words < <(withoutRpath "$kind" $(roleWords NIX_LDFLAGS_BEFORE))
    before+=(${words[@]+"${words[@]}"})
    mapfile -t words < <(withoutRpath "$kind" $(roleWords NIX_LDFLAGS))
    after+=(${words[@]+"${words[@]}"})
fi
mapfile -t words < <(withoutRpath "$kind" $(roleWords NIX_LDFLAGS_AFTER))
after+=(${words[@]+"${words[@]}"})

# The library directories (-L DIR, -LDIR) and the libraries (-l NAME, -lNAME, a store path to
# a .so) of this link, in command-line order; and whether it is a relocatable link.
libDirs=()
declare -A libs=()
relocatable=0
prev=
for arg in ${before[@]+"${before[@]}"} ${args[@]+"${args[@]}"} ${after[@]+"${after[@]}"}; do
    case $prev in
        -L) libDirs+=("$arg") ;;
        -l) libs["lib$arg.so"]=1 ;;
        -dynamic-linker | -plugin) ;; # a .so that is not linked
        *)
            case $arg in
                -L/*) libDirs+=("${arg:2}") ;;
                -l?*) libs["lib${arg:2}.so"]=1 ;;
                "${NIX_STORE:-/nix/store}"/*.so | "${NIX_STORE:-/nix/store}"/*.so.*)
                    libDirs+=("${arg%/*}")
                    libs["${arg##*/}"]=1
                    ;;
                -r | --relocatable | -i) relocatable=1 ;;
            esac
            ;;
    esac
    prev=$arg
done

# A run path for each store directory that provides one of those libraries, in -L order (the
# order the linker searched). Directories outside the store (the build tree, /usr/lib) get
# none: what is there at link time is gone, or is the host's, at run time.
if [[ $(roleFlag NIX_DONT_SET_RPATH) != 1 && $kind != static-pie ]]; then
    declare -A added=()
    for dir in ${libDirs[@]+"${libDirs[@]}"}; do
        dir=$(realpath -s -- "$dir" 2>/dev/null) || continue
        [[ $dir == "${NIX_STORE:-/nix/store}"/* && -z ${added[$dir]:-} ]] || continue
        for path in "$dir"/*; do
            if [[ -n ${libs[${path##*/}]:-} ]]; then
                added[$dir]=1
                after+=(-rpath "$dir")
                break
            fi
        done
    done
fi

if [[ $(roleFlag NIX_SET_BUILD_ID) == 1 ]] && ! ((relocatable)); then
    after+=("--build-id=${NIX_BUILD_ID_STYLE:-sha1}")
fi

debugWrapper @prog@ ${before[@]+"${before[@]}"} ${args[@]+"${args[@]}"} ${after[@]+"${after[@]}"}
exec @prog@ ${before[@]+"${before[@]}"} ${args[@]+"${args[@]}"} ${after[@]+"${after[@]}"}
