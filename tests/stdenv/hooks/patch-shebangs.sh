# Test-stdenv hook: rewrite `#!` lines of executable files to the interpreter
# found on PATH (--build) or HOST_PATH (--host), keeping the file's mtime.  Runs
# on every output at fixup.

fixupOutputHooks+=(_patchShebangsOutput)

# _findOnPath NAME DIRS: first DIR/NAME that is an executable file.
_findOnPath() {
    local name=$1 dirs=$2 dir
    local IFS=:
    for dir in $dirs; do
        if [[ -n $dir && -f $dir/$name && -x $dir/$name ]]; then
            printf '%s\n' "$dir/$name"
            return 0
        fi
    done
    return 1
}

patchShebangs() {
    local searchPath=$PATH
    while (($# > 0)); do
        case $1 in
        --build) searchPath=$PATH ;;
        --host) searchPath=${HOST_PATH-} ;;
        --) shift; break ;;
        *) break ;;
        esac
        shift
    done
    if (($# == 0)); then
        return 0
    fi

    local file line interpreter args program found replacement
    while IFS= read -r -d '' file; do
        if ! isScript "$file"; then
            continue
        fi
        IFS= read -r line <"$file" || true
        line=${line#\#!}
        line=${line#"${line%%[![:space:]]*}"}
        interpreter=${line%%[[:space:]]*}
        args=${line#"$interpreter"}
        args=${args#"${args%%[![:space:]]*}"}
        if [[ $interpreter == */env ]]; then
            program=${args%%[[:space:]]*}
            args=${args#"$program"}
            args=${args#"${args%%[![:space:]]*}"}
        else
            program=${interpreter##*/}
        fi
        if [[ -z $program ]] || ! found=$(_findOnPath "$program" "$searchPath"); then
            continue
        fi
        replacement="#!$found${args:+ $args}"
        if [[ $replacement == "#!$line" ]]; then
            continue
        fi
        echo "$file: interpreter directive changed to \"$replacement\""
        local stamp="$NIX_BUILD_TOP/.shebang-stamp"
        touch -r "$file" -- "$stamp"
        {
            printf '%s\n' "$replacement"
            tail -n +2 -- "$file"
        } >"$stamp.new"
        cat -- "$stamp.new" >"$file"
        touch -r "$stamp" -- "$file"
        rm -f -- "$stamp" "$stamp.new"
    done < <(find "$@" -type f -perm -0100 -print0)
}

_patchShebangsOutput() {
    if [[ -n ${dontPatchShebangs-} || ! -e $prefix ]]; then
        return 0
    fi
    if [[ $output != out && $output == "${outputDev-}" ]]; then
        patchShebangs --build "$prefix"
    else
        patchShebangs --host "$prefix"
    fi
}
