# Test-stdenv hook: which output receives what (outputDev, outputBin, ...), the
# configure/install flags for multi-output builds, the moves at fixup and the
# dev output's propagated-build-inputs.  Written from docs/stdenv-protocol.md §5.

preConfigureHooks+=(_multioutConfig)
preFixupHooks+=(_multioutDocs _multioutDevs)
postFixupHooks+=(_multioutPropagateDev)

# _pickOutput VAR CANDIDATE...: unless VAR is already set, set it (globally) to
# the first candidate that is an output of this derivation, or REMOVE.
_pickOutput() {
    local var=$1
    shift
    if [[ -n ${!var-} ]]; then
        return 0
    fi
    local candidate
    for candidate in "$@"; do
        if [[ $candidate == REMOVE || -n ${!candidate-} ]]; then
            printf -v "$var" '%s' "$candidate"
            return 0
        fi
    done
    echo "multiple-outputs: none of the outputs '$*' exists for $var" >&2
    return 1
}

_pickOutput outputDev dev out
_pickOutput outputBin bin out
_pickOutput outputInclude "$outputDev"
_pickOutput outputLib lib out
_pickOutput outputDoc doc out
_pickOutput outputDevdoc devdoc REMOVE
_pickOutput outputMan man "$outputBin"
_pickOutput outputDevman devman devdoc "$outputMan"
_pickOutput outputInfo info "$outputBin"

# Libraries live in outputLib: that is the rpath, not $out.
_addRpathPrefix "${!outputLib}"
NIX_NO_SELF_RPATH=1

_multioutConfig() {
    if [[ $(getAllOutputNames) == out || -z ${setOutputFlags-1} ]]; then
        return 0
    fi
    local docName=${shareDocName-}
    if [[ -z $docName ]]; then
        local script=${configureScript:-./configure}
        if [[ -f $script ]]; then
            docName=$(sed -n "s/^PACKAGE_TARNAME='\\(.*\\)'\$/\\1/p" -- "$script")
        fi
        if [[ -z $docName ]]; then
            docName=${name%%-[0-9]*}
        fi
    fi
    local -a dirFlags=(
        --bindir="${!outputBin}/bin" --sbindir="${!outputBin}/sbin"
        --includedir="${!outputInclude}/include"
    )
    if [[ -f ${configureScript:-./configure} ]] && grep -q oldincludedir -- "${configureScript:-./configure}"; then
        dirFlags+=(--oldincludedir="${!outputInclude}/include")
    fi
    dirFlags+=(
        --mandir="${!outputMan}/share/man" --infodir="${!outputInfo}/share/info"
        --docdir="${!outputDoc}/share/doc/$docName"
        --libdir="${!outputLib}/lib" --libexecdir="${!outputLib}/libexec"
        --localedir="${!outputLib}/share/locale"
    )
    prependToVar configureFlags "${dirFlags[@]}"
    prependToVar installFlags \
        pkgconfigdir="${!outputDev}/lib/pkgconfig" \
        m4datadir="${!outputDev}/share/aclocal" aclocaldir="${!outputDev}/share/aclocal"
}

# moveToOutput PATTERN DEST: move every output's PATTERN (a glob relative to the
# output) into the same place under DEST; DEST=REMOVE deletes instead.
moveToOutput() {
    local pattern=$1 dest=$2
    local output root found rel parent
    for output in $(getAllOutputNames); do
        root=${!output}
        if [[ $root == "$dest" ]]; then
            continue
        fi
        # shellcheck disable=SC2206
        for found in "$root"/$pattern; do
            if [[ ! -e $found && ! -L $found ]]; then
                continue
            fi
            rel=${found#"$root"}
            if [[ $dest == REMOVE ]]; then
                echo "removing $found"
                rm -r -- "$found"
            else
                echo "moving $found to $dest$rel"
                mkdir -p -- "$(dirname -- "$dest$rel")"
                if [[ -d $found && -d $dest$rel ]]; then
                    cp -r --preserve=all -- "$found/." "$dest$rel/"
                    rm -r -- "$found"
                else
                    mv -- "$found" "$dest$rel"
                fi
            fi
            # Remove directories the move left empty, up to the output root.
            parent=$(dirname -- "$found")
            while [[ $parent != "$root" && -d $parent ]] && rmdir -- "$parent" 2>/dev/null; do
                parent=$(dirname -- "$parent")
            done
        done
    done
}

_multioutDocs() {
    local REMOVE=REMOVE # so that ${!outputDevdoc} works when it is REMOVE
    moveToOutput share/info "${!outputInfo}"
    moveToOutput share/doc "${!outputDoc}"
    moveToOutput share/gtk-doc "${!outputDevdoc}"
    moveToOutput share/devhelp/books "${!outputDevdoc}"
    moveToOutput share/man "${!outputMan}"
    moveToOutput share/man/man3 "${!outputDevman}"
}

_multioutDevs() {
    if [[ $(getAllOutputNames) == out || -z ${moveToDev-1} ]]; then
        return 0
    fi
    moveToOutput include "${!outputInclude}"
    moveToOutput lib/pkgconfig "${!outputDev}"
    moveToOutput share/pkgconfig "${!outputDev}"
    moveToOutput lib/cmake "${!outputDev}"
    moveToOutput share/aclocal "${!outputDev}"
}

# The dev output propagates the outputs holding binaries, headers and
# libraries, so depending on dev brings them all.
_multioutPropagateDev() {
    if [[ $(getAllOutputNames) == out ]]; then
        return 0
    fi
    local target=$outputDev
    if [[ -z ${propagatedBuildOutputs+set} ]]; then
        set +o pipefail
        propagatedBuildOutputs=$(printf '%s\n' "$outputBin" "$outputInclude" "$outputLib" |
            grep -vx -- "$target" | sort -u | tr '\n' ' ')
        set -o pipefail
    fi
    if [[ -z ${propagatedBuildOutputs// /} ]]; then
        return 0
    fi
    mkdir -p "${!target}/nix-support"
    local output
    for output in $propagatedBuildOutputs; do
        printf ' %s' "${!output}" >>"${!target}/nix-support/propagated-build-inputs"
    done
}
