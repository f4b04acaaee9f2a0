# Helpers the wrapped tools share (sourced by bin/*).
#
# The setup hook records which roles this wrapper serves in the build that uses it, by
# exporting NIX_CC_WRAPPER_TARGET_{BUILD,HOST,TARGET}_@salt@=1 (a wrapper in
# `nativeBuildInputs` of a native build serves the host role). Each role has its own
# variables: NIX_CFLAGS_COMPILE_FOR_BUILD, NIX_CFLAGS_COMPILE, NIX_CFLAGS_COMPILE_FOR_TARGET
# and so on. A wrapped tool reads the variables of every role it serves, and nothing when it
# serves none (run outside a build that has it as an input).

roleSuffixes=()
if [[ -n ${NIX_CC_WRAPPER_TARGET_BUILD_@salt@:-} ]]; then roleSuffixes+=(_FOR_BUILD); fi
if [[ -n ${NIX_CC_WRAPPER_TARGET_HOST_@salt@:-} ]]; then roleSuffixes+=(""); fi
if [[ -n ${NIX_CC_WRAPPER_TARGET_TARGET_@salt@:-} ]]; then roleSuffixes+=(_FOR_TARGET); fi

# roleWords NAME: the values of NAME<suffix> for every role served, space-separated.
roleWords() {
    local suffix name text=""
    for suffix in ${roleSuffixes[@]+"${roleSuffixes[@]}"}; do
        name="$1$suffix"
        text+=" ${!name-}"
    done
    printf '%s' "$text"
}

# roleFlag NAME: 1 when NAME<suffix> is 1 for any role served, else 0.
roleFlag() {
    local suffix name
    for suffix in ${roleSuffixes[@]+"${roleSuffixes[@]}"}; do
        name="$1$suffix"
        if [[ ${!name-} == 1 ]]; then echo 1; return; fi
    done
    echo 0
}

# linkKind ARGS...: `static-pie`, `static` or `dynamic`, from the last of -static/-static-pie.
linkKind() {
    local kind=dynamic arg
    for arg in "$@"; do
        case $arg in
            -static) kind=static ;;
            -static-pie) kind=static-pie ;;
        esac
    done
    echo "$kind"
}

# withoutRpath KIND WORDS...: WORDS, less every `-rpath DIR` pair when KIND is static-pie (a
# run path would make ld emit dynamic sections such a program cannot have).
withoutRpath() {
    local kind=$1
    shift
    while (($#)); do
        if [[ $kind == static-pie && $1 == -rpath ]]; then
            shift 2 || shift
            continue
        fi
        printf '%s\n' "$1"
        shift
    done
}

# debugWrapper TOOL ARGS...: the command about to run, on stderr, when NIX_DEBUG >= 1.
debugWrapper() {
    if ((${NIX_DEBUG:-0} >= 1)); then
        printf '%s:' "$1" >&2
        shift
        printf ' %q' "$@" >&2
        echo >&2
    fi
}
