# checkpoint-builder test stdenv: the phase protocol of docs/stdenv-protocol.md
# (§2-§5), implemented from that description for the conformance tests.
#
# `$stdenv/setup` is this file behind a short preamble (see builder.sh).  Sourcing
# it prepares the shell; `genericBuild` then runs the phases.  It is written to
# behave like the nixpkgs stdenv where the tests look (variables, attributes,
# options, hooks, cwd, log lines), not to be complete: no cc wrapper, no libtool
# fixes, no stripping.

# ---------------------------------------------------------------------------
# Shell options.  Remember what the caller had; phases get errexit back only if
# the caller (stock: `bash -e`) had it.
__nixpkgs_setup_set_original=$-
set -eu
set -o pipefail

if ((BASH_VERSINFO[0] < 5)); then
    echo "this stdenv needs bash 5 or newer, found $BASH_VERSION" >&2
    exit 1
fi
shopt -s inherit_errexit

if [[ -n ${NIX_DEBUG-} && ! $NIX_DEBUG =~ ^[0-7]$ ]]; then
    printf 'NIX_DEBUG must be a single digit from 0 to 7, not %q\n' "$NIX_DEBUG" >&2
    exit 1
fi
if ((${NIX_DEBUG:-0} >= 6)); then
    set -x
fi

# ---------------------------------------------------------------------------
# Structured attributes.  Nix 2.8 names the attrs files by their path outside
# the sandbox; point the variables at the copies in the build directory then.
if [[ -f .attrs.sh || -n ${NIX_ATTRS_JSON_FILE-} ]]; then
    __structuredAttrs=1
    echo "structuredAttrs is enabled"
    for __outName in "${!outputs[@]}"; do
        export "$__outName=${outputs[$__outName]}"
    done
    unset -v __outName
    if [[ ! -f ${NIX_ATTRS_JSON_FILE-} ]]; then
        export NIX_ATTRS_JSON_FILE="$NIX_BUILD_TOP/.attrs.json"
    fi
    if [[ ! -f ${NIX_ATTRS_SH_FILE-} ]]; then
        export NIX_ATTRS_SH_FILE="$NIX_BUILD_TOP/.attrs.sh"
    fi
else
    __structuredAttrs=
    : "${outputs:=out}"
fi

getAllOutputNames() {
    if [[ -n $__structuredAttrs ]]; then
        echo "${!outputs[*]}"
    else
        echo "$outputs"
    fi
}

# ---------------------------------------------------------------------------
# Logging: level 0 (error) to 7 (vomit), written to NIX_LOG_FD when NIX_DEBUG
# is at least the level.
_logAtLevel() {
    local level=$1
    shift
    if [[ -z ${NIX_LOG_FD-} ]] || ((${NIX_DEBUG:-0} < level)); then
        return 0
    fi
    printf '%s\n' "$*" >&"$NIX_LOG_FD"
}
nixErrorLog() { _logAtLevel 0 "$@"; }
nixWarnLog() { _logAtLevel 1 "$@"; }
nixNoticeLog() { _logAtLevel 2 "$@"; }
nixInfoLog() { _logAtLevel 3 "$@"; }
nixTalkativeLog() { _logAtLevel 4 "$@"; }
nixChattyLog() { _logAtLevel 5 "$@"; }
nixDebugLog() { _logAtLevel 6 "$@"; }
nixVomitLog() { _logAtLevel 7 "$@"; }

# ---------------------------------------------------------------------------
# Hooks.  `runHook NAME ARGS...` runs the implicit hook NAME (function, file on
# PATH, or string variable), then every element of the array `${NAME%Hook}Hooks`.

# _eval HOOK ARGS...: call HOOK with ARGS if it names a function, else eval it.
_eval() {
    if declare -F "$1" >/dev/null; then
        "$@"
    else
        eval "$1"
    fi
}

_logHook() {
    if ((${NIX_DEBUG:-0} < 4)); then
        return 0
    fi
    local name=$1 hook=$2
    if declare -F "$hook" >/dev/null; then
        nixTalkativeLog "calling '$name' function hook '$hook'"
    else
        nixTalkativeLog "evaluating '$name' string hook"
    fi
}

# _callImplicitHook DEFAULT NAME: run the implicit hook; return DEFAULT when
# there is none.  String hooks see $1 = DEFAULT and $2 = NAME.
_callImplicitHook() {
    local fallback=$1 hookName=$2
    if declare -F "$hookName" >/dev/null; then
        _logHook "$hookName" "$hookName"
        "$hookName"
    elif type -p "$hookName" >/dev/null; then
        source "$hookName"
    elif [[ -n ${!hookName-} ]]; then
        _logHook "$hookName" "${!hookName}"
        eval "${!hookName}"
    else
        return "$fallback"
    fi
}

# _hookList NAME: fill the caller's array `hookList` with the hooks of NAME.
_hookList() {
    local elements="${1%Hook}Hooks[@]"
    hookList=("_callImplicitHook $2 $1")
    if [[ -n ${!elements+set} ]]; then
        hookList+=("${!elements}")
    fi
}

runHook() {
    local hookName=$1
    shift
    local -a hookList
    _hookList "$hookName" 0
    local hook
    for hook in "${hookList[@]}"; do
        _eval "$hook" "$@"
    done
    return 0
}

# runOneHook NAME ARGS...: stop at the first hook that succeeds; 1 if none does.
runOneHook() {
    local hookName=$1
    shift
    local -a hookList
    _hookList "$hookName" 1
    local hook
    for hook in "${hookList[@]}"; do
        if _eval "$hook" "$@"; then
            return 0
        fi
    done
    return 1
}

echoCmd() {
    printf '%s:' "$1"
    shift
    printf ' %q' "$@"
    echo
}

# ---------------------------------------------------------------------------
# The EXIT trap: failureHook / succeedOnFailure on failure, exitHook on success.
exitHandler() {
    exitCode=$?
    set +e

    if [[ -n ${showBuildStats-} ]]; then
        # shellcheck disable=SC2207
        buildTimes=($(times))
        echo "build times:"
        echo "user time for the shell             ${buildTimes[0]}"
        echo "system time for the shell           ${buildTimes[1]}"
        echo "user time for all child processes   ${buildTimes[2]}"
        echo "system time for all child processes ${buildTimes[3]}"
    fi

    if ((exitCode == 0)); then
        runHook exitHook
    else
        runHook failureHook
        if [[ -n ${succeedOnFailure-} ]]; then
            echo "build failed with exit code $exitCode (ignored)"
            mkdir -p "$out/nix-support"
            printf '%s' "$exitCode" >"$out/nix-support/failed"
            exit 0
        fi
    fi
    return "$exitCode"
}

trap exitHandler EXIT

# ---------------------------------------------------------------------------
# Helpers.

# addToSearchPathWithCustomDelimiter DELIM VAR DIR: append DIR to the exported
# VAR if DIR exists and is not in it yet.
addToSearchPathWithCustomDelimiter() {
    local delim=$1 var=$2 dir=$3
    if [[ ! -d $dir ]]; then
        return 0
    fi
    local current=${!var-}
    if [[ "$delim$current$delim" == *"$delim$dir$delim"* ]]; then
        return 0
    fi
    export "$var=${current:+$current$delim}$dir"
}

addToSearchPath() {
    addToSearchPathWithCustomDelimiter : "$@"
}

# _varKind NAME: prints assoc, array, scalar or missing.
_varKind() {
    local decl flags
    if ! decl=$(declare -p "$1" 2>/dev/null); then
        echo missing
        return 0
    fi
    flags=${decl#declare -}
    flags=${flags%% *}
    case $flags in
    *A*) echo assoc ;;
    *a*) echo array ;;
    *) echo scalar ;;
    esac
}

# _addToVar prepend|append NAME VALUES...: keeps NAME an array if it is one (or
# is missing and structured attrs are on), else treats it as a string.
_addToVar() {
    local where=$1 name=$2
    shift 2
    local kind
    kind=$(_varKind "$name")
    if [[ $kind == missing ]]; then
        if [[ -n $__structuredAttrs ]]; then kind=array; else kind=scalar; fi
    fi
    case $kind in
    assoc)
        nixErrorLog "${where}ToVar: $name is an associative array"
        return 1
        ;;
    array)
        local -n arrayRef=$name
        if [[ $where == prepend ]]; then
            arrayRef=("$@" ${arrayRef[@]+"${arrayRef[@]}"})
        else
            arrayRef+=("$@")
        fi
        ;;
    scalar)
        local -n stringRef=$name
        if [[ $where == prepend ]]; then
            stringRef="$* ${stringRef-}"
        else
            stringRef="${stringRef-} $*"
        fi
        ;;
    esac
}

prependToVar() { _addToVar prepend "$@"; }
appendToVar() { _addToVar append "$@"; }

# concatTo TARGET SOURCE[=DEFAULT]...: append each source to the array TARGET;
# arrays element by element, strings split on whitespace (no globbing); an
# empty source with a default contributes the default as one element.
concatTo() {
    local -
    set -o noglob
    local -n concatTarget=$1
    shift
    local spec name fallback kind ref
    for spec in "$@"; do
        name=${spec%%=*}
        fallback=
        if [[ $spec == *=* ]]; then
            fallback=${spec#*=}
        fi
        ref="$name[*]"
        if [[ -z ${!ref-} && -n $fallback ]]; then
            concatTarget+=("$fallback")
            continue
        fi
        kind=$(_varKind "$name")
        ref="$name[@]"
        case $kind in
        array | assoc)
            concatTarget+=(${!ref+"${!ref}"})
            ;;
        scalar)
            # shellcheck disable=SC2206
            concatTarget+=(${!name-})
            ;;
        esac
    done
}

concatStringsSep() {
    local sep=$1 name=$2
    local kind
    kind=$(_varKind "$name")
    case $kind in
    array | assoc)
        local ref="$name[@]" item out="" first=1
        for item in ${!ref+"${!ref}"}; do
            if ((first)); then out=$item; first=0; else out+=$sep$item; fi
        done
        printf '%s' "$out"
        ;;
    scalar)
        printf '%s' "${!name}"
        ;;
    esac
}

printLines() {
    if (($# > 0)); then
        printf '%s\n' "$@"
    fi
}

printWords() {
    if (($# > 0)); then
        printf '%s ' "$@"
    fi
}

isScript() {
    local magic
    magic=$(head -c 2 -- "$1" 2>/dev/null) || return 1
    [[ $magic == '#!' ]]
}

isELF() {
    local magic
    magic=$(head -c 4 -- "$1" 2>/dev/null | tr -d '\0') || return 1
    [[ $magic == $'\x7fELF' ]]
}

# _addRpathPrefix DIR: -rpath DIR/lib into NIX_LDFLAGS, unless disabled.
_addRpathPrefix() {
    if [[ ${NIX_NO_SELF_RPATH:-0} != 1 ]]; then
        export NIX_LDFLAGS="-rpath $1/lib ${NIX_LDFLAGS-}"
    fi
}

# Structured attrs: `env` holds the variables to export.
if [[ -n $__structuredAttrs ]] && [[ $(_varKind env) == assoc ]]; then
    for __envName in "${!env[@]}"; do
        export "$__envName=${env[$__envName]}"
    done
    unset -v __envName
fi

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}

shopt -s nullglob

# ---------------------------------------------------------------------------
# PATH from initialPath.
PATH=
HOST_PATH=
for __dir in $initialPath; do
    if [[ $__dir == / ]]; then
        __dir=
    fi
    addToSearchPath PATH "$__dir/bin"
    if [[ -z ${strictDeps-} ]]; then
        addToSearchPath HOST_PATH "$__dir/bin"
    fi
done
unset -v __dir
nixInfoLog "initial path: $PATH"

if [[ -z ${SHELL-} ]]; then
    echo "SHELL is not set" >&2
    exit 1
fi
BASH=$SHELL
export CONFIG_SHELL=$SHELL
: "${shell:=$SHELL}"
export shell

runHook preHook
runHook addInputsHook

# ---------------------------------------------------------------------------
# Dependencies.  Offsets: -1 build, 0 host, 1 target platform.
declare -a pkgsBuildBuild pkgsBuildHost pkgsBuildTarget
declare -a pkgsHostHost pkgsHostTarget
declare -a pkgsTargetTarget
declare -a envBuildBuildHooks envBuildHostHooks envBuildTargetHooks
declare -a envHostHostHooks envHostTargetHooks
declare -a envTargetTargetHooks
declare -a preFixupHooks fixupOutputHooks preConfigureHooks postFixupHooks postUnpackHooks unpackCmdHooks

# Files in nix-support listing propagated dependencies, by the dependency's
# offsets relative to the package that propagates them.
propagatedBuildDepFiles=(propagated-build-build-deps propagated-native-build-inputs propagated-build-target-deps)
propagatedHostDepFiles=(propagated-host-host-deps propagated-build-inputs)
propagatedTargetDepFiles=(propagated-target-target-deps)

# Bookkeeping, unset once the environment is set up.
declare -A __pkgsArrayOf=(
    [-1:-1]=pkgsBuildBuild [-1:0]=pkgsBuildHost [-1:1]=pkgsBuildTarget
    [0:0]=pkgsHostHost [0:1]=pkgsHostTarget [1:1]=pkgsTargetTarget
)
declare -A __envHooksOf=(
    [-1:-1]=envBuildBuildHook [-1:0]=envBuildHostHook [-1:1]=envBuildTargetHook
    [0:0]=envHostHostHook [0:1]=envHostTargetHook [1:1]=envTargetTargetHook
)
__offsetPairs=(-1:-1 -1:0 -1:1 0:0 0:1 1:1)

# addEnvHooks HOSTOFFSET FUNCTIONS...: register env hooks for every dependency
# whose host platform is HOSTOFFSET.
addEnvHooks() {
    local depHostOffset=$1
    shift
    local arrayName
    local -a arrays
    case $depHostOffset in
    -1) arrays=(envBuildBuildHooks envBuildHostHooks envBuildTargetHooks) ;;
    0) arrays=(envHostHostHooks envHostTargetHooks) ;;
    1) arrays=(envTargetTargetHooks) ;;
    *)
        nixErrorLog "addEnvHooks: bad host offset $depHostOffset"
        return 1
        ;;
    esac
    for arrayName in "${arrays[@]}"; do
        local -n hooksRef=$arrayName
        hooksRef+=("$@")
        unset -n hooksRef
    done
}

# findInputs PKG HOSTOFFSET TARGETOFFSET: record PKG under its offsets, then
# everything it propagates, recursively, each offset pair at most once.
findInputs() {
    local pkg=$1 hostOffset=$2 targetOffset=$3

    # Relative offset of a propagated dependency -> absolute offset.
    mapOffset() {
        local relative=$1
        local -n absolute=$2
        if ((relative <= 0)); then
            absolute=$((relative + hostOffset))
        else
            absolute=$((relative - 1 + targetOffset))
        fi
    }

    local -n found=${__pkgsArrayOf[$hostOffset:$targetOffset]}
    local seen
    for seen in ${found[@]+"${found[@]}"}; do
        if [[ $seen == "$pkg" ]]; then
            return 0
        fi
    done
    if [[ ! -e $pkg ]]; then
        echo "build input $pkg does not exist" >&2
        exit 1
    fi
    found+=("$pkg")

    local pair relHost relTarget depHost depTarget file dep
    local -a files=("${propagatedBuildDepFiles[@]}" "${propagatedHostDepFiles[@]}" "${propagatedTargetDepFiles[@]}")
    local i=0
    for pair in "${__offsetPairs[@]}"; do
        file=${files[i]}
        i=$((i + 1))
        relHost=${pair%:*}
        relTarget=${pair#*:}
        mapOffset "$relHost" depHost
        mapOffset "$relTarget" depTarget
        if ((depHost < -1 || depTarget > 1)); then
            continue
        fi
        if [[ ! -f $pkg/nix-support/$file ]]; then
            continue
        fi
        for dep in $(<"$pkg/nix-support/$file"); do
            findInputs "$dep" "$depHost" "$depTarget"
        done
    done
}

: "${depsBuildBuild=}" "${depsBuildBuildPropagated=}"
: "${nativeBuildInputs=}" "${propagatedNativeBuildInputs=}" "${defaultNativeBuildInputs=}"
: "${depsBuildTarget=}" "${depsBuildTargetPropagated=}"
: "${depsHostHost=}" "${depsHostHostPropagated=}"
: "${buildInputs=}" "${propagatedBuildInputs=}" "${defaultBuildInputs=}"
: "${depsTargetTarget=}" "${depsTargetTargetPropagated=}"

for __pkg in ${depsBuildBuild[@]} ${depsBuildBuildPropagated[@]}; do findInputs "$__pkg" -1 -1; done
for __pkg in ${nativeBuildInputs[@]} ${propagatedNativeBuildInputs[@]}; do findInputs "$__pkg" -1 0; done
for __pkg in ${depsBuildTarget[@]} ${depsBuildTargetPropagated[@]}; do findInputs "$__pkg" -1 1; done
for __pkg in ${depsHostHost[@]} ${depsHostHostPropagated[@]}; do findInputs "$__pkg" 0 0; done
for __pkg in ${buildInputs[@]} ${propagatedBuildInputs[@]}; do findInputs "$__pkg" 0 1; done
for __pkg in ${depsTargetTarget[@]} ${depsTargetTargetPropagated[@]}; do findInputs "$__pkg" 1 1; done
# The stdenv's own inputs come last.
for __pkg in ${defaultNativeBuildInputs[@]}; do findInputs "$__pkg" -1 0; done
for __pkg in ${defaultBuildInputs[@]}; do findInputs "$__pkg" 0 1; done
unset -v __pkg

# activatePackage PKG HOSTOFFSET TARGETOFFSET: a plain file is a hook to source;
# a directory contributes bin/ and share/ and its nix-support/setup-hook.
activatePackage() {
    local pkg=$1 hostOffset=$2 targetOffset=$3
    if [[ -f $pkg ]]; then
        source "$pkg"
    fi
    if [[ -z ${strictDeps-} ]] || ((hostOffset < 0)); then
        addToSearchPath _PATH "$pkg/bin"
    fi
    if ((hostOffset < 0)); then
        addToSearchPath _XDG_DATA_DIRS "$pkg/share"
    fi
    if ((hostOffset == 0)); then
        addToSearchPath _HOST_PATH "$pkg/bin"
    fi
    if [[ -f $pkg/nix-support/setup-hook ]]; then
        source "$pkg/nix-support/setup-hook"
    fi
}

_activatePkgs() {
    local pair pkg
    for pair in "${__offsetPairs[@]}"; do
        local -n pkgsRef=${__pkgsArrayOf[$pair]}
        for pkg in ${pkgsRef[@]+"${pkgsRef[@]}"}; do
            activatePackage "$pkg" "${pair%:*}" "${pair#*:}"
        done
        unset -n pkgsRef
    done
}

# _addToEnv: run each env hook on the dependencies it applies to (strictDeps),
# or on every dependency once (no strictDeps).
_addToEnv() {
    local pair pkg depHostOffset depTargetOffset
    local -a everything=(
        ${pkgsBuildBuild[@]+"${pkgsBuildBuild[@]}"} ${pkgsBuildHost[@]+"${pkgsBuildHost[@]}"}
        ${pkgsBuildTarget[@]+"${pkgsBuildTarget[@]}"} ${pkgsHostHost[@]+"${pkgsHostHost[@]}"}
        ${pkgsHostTarget[@]+"${pkgsHostTarget[@]}"} ${pkgsTargetTarget[@]+"${pkgsTargetTarget[@]}"}
    )
    for pair in "${__offsetPairs[@]}"; do
        depHostOffset=${pair%:*}
        depTargetOffset=${pair#*:}
        if [[ -n ${strictDeps-} ]]; then
            local -n pkgsRef=${__pkgsArrayOf[$pair]}
            for pkg in ${pkgsRef[@]+"${pkgsRef[@]}"}; do
                runHook "${__envHooksOf[$pair]}" "$pkg"
            done
            unset -n pkgsRef
        else
            local -A visited=()
            for pkg in ${everything[@]+"${everything[@]}"}; do
                if [[ -n ${visited[$pkg]-} ]]; then
                    continue
                fi
                visited[$pkg]=1
                runHook "${__envHooksOf[$pair]}" "$pkg"
            done
            unset -v visited
        fi
    done
}

_activatePkgs
_addToEnv

unset -v __pkgsArrayOf __envHooksOf __offsetPairs

_addRpathPrefix "$out"

export TZ=UTC

if [[ -z ${prefix-} ]]; then
    prefix=$out
fi
if [[ ${useTempPrefix-} == 1 ]]; then
    prefix="$NIX_BUILD_TOP/tmp_prefix"
fi

PATH="${_PATH-}${_PATH:+${PATH:+:}}$PATH"
HOST_PATH="${_HOST_PATH-}${_HOST_PATH:+${HOST_PATH:+:}}$HOST_PATH"
export XDG_DATA_DIRS="${_XDG_DATA_DIRS-}${_XDG_DATA_DIRS:+${XDG_DATA_DIRS:+:}}${XDG_DATA_DIRS-}"
nixInfoLog "final path: $PATH"
unset -v _PATH _HOST_PATH _XDG_DATA_DIRS

if [[ -z ${NIX_BUILD_CORES-} ]]; then
    NIX_BUILD_CORES=1
elif ((NIX_BUILD_CORES <= 0)); then
    NIX_BUILD_CORES=$(nproc 2>/dev/null || echo 1)
    if ((NIX_BUILD_CORES < 1)); then
        NIX_BUILD_CORES=1
    fi
fi
export NIX_BUILD_CORES

if [[ ${IN_NIX_SHELL-} != impure ]]; then
    export NIX_SSL_CERT_FILE="${NIX_SSL_CERT_FILE:-/no-cert-file.crt}"
    export SSL_CERT_FILE="${SSL_CERT_FILE:-/no-cert-file.crt}"
fi

# ---------------------------------------------------------------------------
# Text substitution.
_substituteStream_has_warned_replace_deprecation=false

# substituteStream NAME DESCRIPTION ARGS...: edit the variable NAME in place.
substituteStream() {
    local var=$1 description=$2
    shift 2
    local -n text=$var
    local pattern replacement
    while (($# > 0)); do
        case $1 in
        --replace-fail | --replace-warn | --replace-quiet | --replace)
            if [[ $1 == --replace && $_substituteStream_has_warned_replace_deprecation == false ]]; then
                nixWarnLog "substituteStream: --replace is deprecated, use --replace-fail"
                _substituteStream_has_warned_replace_deprecation=true
            fi
            pattern=$2
            replacement=$3
            if [[ $text != *"$pattern"* ]]; then
                case $1 in
                --replace-fail)
                    echo "substituteStream: pattern '$pattern' not found in $description" >&2
                    return 1
                    ;;
                --replace-warn | --replace)
                    echo "substituteStream: warning: pattern '$pattern' not found in $description" >&2
                    ;;
                esac
            fi
            text=${text//"$pattern"/"$replacement"}
            shift 3
            ;;
        --subst-var)
            if [[ ! $2 =~ ^[a-zA-Z_][a-zA-Z0-9_]*$ ]]; then
                echo "substituteStream: bad variable name '$2'" >&2
                return 1
            fi
            if [[ -z ${!2+set} ]]; then
                echo "substituteStream: variable '$2' is unset" >&2
                return 1
            fi
            text=${text//"@$2@"/"${!2}"}
            shift 2
            ;;
        --subst-var-by)
            text=${text//"@$2@"/"$3"}
            shift 3
            ;;
        *)
            echo "substituteStream: unknown argument '$1'" >&2
            return 1
            ;;
        esac
    done
    printf '%s' "$text"
}

consumeEntire() {
    # Read all of stdin into the variable named $1, keeping trailing newlines.
    if IFS='' read -r -d '' "$1"; then
        echo "consumeEntire: input contains a NUL byte" >&2
        return 1
    fi
}

substitute() {
    local input=$1 output=$2
    shift 2
    if [[ ! -f $input ]]; then
        echo "substitute: file '$input' does not exist" >&2
        return 1
    fi
    local content
    consumeEntire content <"$input"
    if [[ -e $output ]]; then
        chmod +w -- "$output"
    fi
    substituteStream content "file '$input'" "$@" >"$output"
}

substituteInPlace() {
    local -a files=()
    while (($# > 0)) && [[ $1 != --* ]]; do
        files+=("$1")
        shift
    done
    local f
    for f in "${files[@]}"; do
        substitute "$f" "$f" "$@"
    done
}

# substituteAll IN OUT: replace @name@ for every exported lower-case variable.
substituteAll() {
    local input=$1 output=$2
    local -a args=()
    local name
    for name in $(compgen -e); do
        if [[ $name =~ ^[a-z][a-zA-Z0-9_]*$ ]]; then
            args+=(--subst-var "$name")
        fi
    done
    substitute "$input" "$output" "${args[@]}"
}

# ---------------------------------------------------------------------------
# dumpVars: the exported environment into $NIX_BUILD_TOP/env-vars (mode 0600).
dumpVars() {
    if [[ ${noDumpEnvVars:-0} == 1 ]]; then
        return 0
    fi
    local savedMask
    savedMask=$(umask)
    umask 0077
    export >"$NIX_BUILD_TOP/env-vars" || true
    umask "$savedMask"
}

# stripHash PATH: the base name without a leading store hash.
stripHash() {
    local name hadNocasematch=0
    name=${1%/}
    name=${name##*/}
    if shopt -q nocasematch; then
        hadNocasematch=1
        shopt -u nocasematch
    fi
    if [[ $name =~ ^[a-z0-9]{32}- ]]; then
        echo "${name:33}"
    else
        echo "$name"
    fi
    if ((hadNocasematch)); then
        shopt -s nocasematch
    fi
}

# recordPropagatedDependencies: write the propagated lists into the dev output.
recordPropagatedDependencies() {
    local -a lists=(depsBuildBuildPropagated propagatedNativeBuildInputs depsBuildTargetPropagated
        depsHostHostPropagated propagatedBuildInputs depsTargetTargetPropagated)
    local -a files=("${propagatedBuildDepFiles[@]}" "${propagatedHostDepFiles[@]}" "${propagatedTargetDepFiles[@]}")
    local devOutput=${outputDev:-out}
    local i
    for i in "${!lists[@]}"; do
        local -a words=()
        concatTo words "${lists[i]}"
        if ((${#words[@]} == 0)); then
            continue
        fi
        mkdir -p "${!devOutput}/nix-support"
        printWords "${words[@]}" >"${!devOutput}/nix-support/${files[i]}"
    done
}

unpackCmdHooks+=(_defaultUnpack)

# ---------------------------------------------------------------------------
# Phases.

_defaultUnpack() {
    local archive=$1
    if [[ -d $archive ]]; then
        local target
        target=$(stripHash "$archive")
        if [[ -e $target ]]; then
            echo "cannot copy $archive to $target: it already exists (two sources with one name?)" >&2
            return 1
        fi
        cp -pr --reflink=auto -- "$archive" "$target"
        return 0
    fi
    case $archive in
    *.tar | *.tar.gz | *.tgz | *.tar.bz2 | *.tbz2 | *.tbz | *.tar.xz | *.txz)
        tar xf "$archive" --mode=+w --warning=no-timestamp
        ;;
    *)
        return 1
        ;;
    esac
}

unpackFile() {
    curSrc=$1
    echo "unpacking source archive $curSrc"
    if ! runOneHook unpackCmd "$curSrc"; then
        echo "do not know how to unpack source archive $curSrc"
        exit 1
    fi
}

unpackPhase() {
    runHook preUnpack

    if [[ -z ${srcs-} ]]; then
        if [[ -z ${src-} ]]; then
            # shellcheck disable=SC2016
            echo 'variable $src or $srcs should point to the source'
            exit 1
        fi
        srcs=$src
    fi

    local -a srcsList=()
    concatTo srcsList srcs

    # Directories present before unpacking are not source roots.
    local -A preexisting=()
    local entry
    for entry in *; do
        if [[ -d $entry ]]; then
            preexisting[$entry]=1
        fi
    done

    for entry in "${srcsList[@]}"; do
        unpackFile "$entry"
    done

    : "${sourceRoot=}"
    if [[ -n ${setSourceRoot-} ]]; then
        runOneHook setSourceRoot
    elif [[ -z $sourceRoot ]]; then
        for entry in *; do
            if [[ -d $entry && -z ${preexisting[$entry]-} ]]; then
                if [[ -n $sourceRoot ]]; then
                    echo "unpacker produced multiple directories"
                    exit 1
                fi
                sourceRoot=$entry
            fi
        done
    fi

    if [[ -z $sourceRoot ]]; then
        echo "unpacker appears to have produced no directories"
        exit 1
    fi

    echo "source root is $sourceRoot"

    if [[ ${dontMakeSourcesWritable:-0} != 1 ]]; then
        chmod -R u+w -- "$sourceRoot"
    fi

    runHook postUnpack
}

patchPhase() {
    runHook prePatch

    local -a patchList=() flags=()
    concatTo patchList patches
    concatTo flags patchFlags=-p1

    local p decompress
    for p in ${patchList[@]+"${patchList[@]}"}; do
        echo "applying patch $p"
        case $p in
        *.gz) decompress="gzip -d" ;;
        *.bz2) decompress="bzip2 -d" ;;
        *.xz) decompress="xz -d" ;;
        *.lzma) decompress="xz -d --format=lzma" ;;
        *) decompress=cat ;;
        esac
        # shellcheck disable=SC2086
        $decompress <"$p" 2>&1 | patch "${flags[@]}"
    done

    runHook postPatch
}

configurePhase() {
    runHook preConfigure

    : "${configureScript=}"
    if [[ -z $configureScript && -x ./configure ]]; then
        configureScript=./configure
    fi

    if [[ -n $configureScript && -z ${dontAddPrefix-} && -n $prefix ]]; then
        prependToVar configureFlags "${prefixKey:---prefix=}$prefix"
    fi

    if [[ -f $configureScript ]]; then
        if [[ -z ${dontAddDisableDepTrack-} ]] && grep -q dependency-tracking "$configureScript"; then
            prependToVar configureFlags --disable-dependency-tracking
        fi
        if [[ -z ${dontDisableStatic-} ]] && grep -q enable-static "$configureScript"; then
            prependToVar configureFlags --disable-static
        fi
        if [[ -z ${dontPatchShebangsInConfigure-} ]] && declare -F patchShebangs >/dev/null; then
            patchShebangs --build "$configureScript"
        fi
    fi

    if [[ -n $configureScript ]]; then
        local -a flags=()
        concatTo flags configureFlags configureFlagsArray
        echoCmd 'configure flags' ${flags[@]+"${flags[@]}"}
        # shellcheck disable=SC2086
        $configureScript ${flags[@]+"${flags[@]}"}
    else
        echo "no configure script, doing nothing"
    fi

    runHook postConfigure
}

# _haveMakefile: true when make has something to read.
_haveMakefile() {
    [[ -n ${makeFlags-} || -n ${makefile-} || -e Makefile || -e makefile || -e GNUmakefile ]]
}

buildPhase() {
    runHook preBuild

    if ! _haveMakefile; then
        echo "no Makefile or custom buildPhase, doing nothing"
    else
        foundMakefile=1
        local -a flags=(${enableParallelBuilding:+-j$NIX_BUILD_CORES} SHELL="$SHELL")
        concatTo flags makeFlags makeFlagsArray buildFlags buildFlagsArray
        echoCmd 'build flags' "${flags[@]}"
        make ${makefile:+-f "$makefile"} "${flags[@]}"
    fi

    runHook postBuild
}

checkPhase() {
    runHook preCheck

    if [[ -z ${foundMakefile-} ]]; then
        echo "no Makefile or custom checkPhase, doing nothing"
    else
        if [[ -z ${checkTarget-} ]]; then
            if make -n ${makefile:+-f "$makefile"} check >/dev/null 2>&1; then
                checkTarget=check
            elif make -n ${makefile:+-f "$makefile"} test >/dev/null 2>&1; then
                checkTarget=test
            fi
        fi
        if [[ -z ${checkTarget-} ]]; then
            echo "no check/test target in ${makefile:-Makefile}, doing nothing"
        else
            local -a flags=(${enableParallelChecking:+-j$NIX_BUILD_CORES} SHELL="$SHELL")
            concatTo flags makeFlags makeFlagsArray checkFlags=VERBOSE=y checkFlagsArray checkTarget
            echoCmd 'check flags' "${flags[@]}"
            make ${makefile:+-f "$makefile"} "${flags[@]}"
        fi
    fi

    runHook postCheck
}

installPhase() {
    runHook preInstall

    if ! _haveMakefile; then
        echo "no Makefile or custom installPhase, doing nothing"
    else
        foundMakefile=1
        if [[ -n $prefix ]]; then
            mkdir -p "$prefix"
        fi
        local -a flags=(${enableParallelInstalling:+-j$NIX_BUILD_CORES} SHELL="$SHELL")
        concatTo flags makeFlags makeFlagsArray installFlags installFlagsArray installTargets=install
        echoCmd 'install flags' "${flags[@]}"
        make ${makefile:+-f "$makefile"} "${flags[@]}"
    fi

    runHook postInstall
}

fixupPhase() {
    local output
    for output in $(getAllOutputNames); do
        if [[ -e ${!output} ]]; then
            chmod -R u+w,u-s,g-s "${!output}"
        fi
    done

    runHook preFixup

    for output in $(getAllOutputNames); do
        prefix=${!output} runHook fixupOutput
    done

    recordPropagatedDependencies

    local devOutput=${outputDev:-out} binOutput=${outputBin:-out}
    if [[ -n ${setupHook-} ]]; then
        mkdir -p "${!devOutput}/nix-support"
        substituteAll "$setupHook" "${!devOutput}/nix-support/setup-hook"
    fi

    local -a extraHooks=()
    concatTo extraHooks setupHooks
    local hook
    for hook in ${extraHooks[@]+"${extraHooks[@]}"}; do
        mkdir -p "${!devOutput}/nix-support"
        local tmpHook="$NIX_BUILD_TOP/.setup-hook-part"
        substituteAll "$hook" "$tmpHook"
        cat -- "$tmpHook" >>"${!devOutput}/nix-support/setup-hook"
        rm -f -- "$tmpHook"
    done

    local -a userEnv=()
    concatTo userEnv propagatedUserEnvPkgs
    if ((${#userEnv[@]} > 0)); then
        mkdir -p "${!binOutput}/nix-support"
        printWords "${userEnv[@]}" >"${!binOutput}/nix-support/propagated-user-env-packages"
    fi

    runHook postFixup
}

installCheckPhase() {
    runHook preInstallCheck

    if [[ -z ${foundMakefile-} ]]; then
        echo "no Makefile or custom installCheckPhase, doing nothing"
    elif [[ -z ${installCheckTarget-} ]] &&
        ! make -n ${makefile:+-f "$makefile"} installcheck >/dev/null 2>&1; then
        echo "no installcheck target in ${makefile:-Makefile}, doing nothing"
    else
        local -a flags=(${enableParallelChecking:+-j$NIX_BUILD_CORES} SHELL="$SHELL")
        concatTo flags makeFlags makeFlagsArray installCheckFlags installCheckFlagsArray installCheckTarget=installcheck
        echoCmd 'installcheck flags' "${flags[@]}"
        make ${makefile:+-f "$makefile"} "${flags[@]}"
    fi

    runHook postInstallCheck
}

distPhase() {
    runHook preDist

    local -a flags=()
    concatTo flags distFlags distFlagsArray distTarget=dist
    echo 'dist flags:' "${flags[@]}"
    make ${makefile:+-f "$makefile"} "${flags[@]}"

    if [[ ${dontCopyDist:-0} != 1 ]]; then
        mkdir -p "$out/tarballs"
        local -a tarballList=()
        concatTo tarballList tarballs
        if ((${#tarballList[@]} == 0)); then
            tarballList=(*.tar.gz)
        fi
        cp -pvd -- "${tarballList[@]}" "$out/tarballs"
    fi

    runHook postDist
}

showPhaseHeader() {
    local phase=$1
    echo "Running phase: $phase"
    if [[ -n ${NIX_LOG_FD-} ]]; then
        printf '@nix { "action": "setPhase", "phase": "%s" }\n' "$phase" >&"$NIX_LOG_FD"
    fi
}

showPhaseFooter() {
    local phase=$1 start=$2 end=$3
    local elapsed=$((end - start))
    if ((elapsed < 30)); then
        return 0
    fi
    local text=""
    if ((elapsed >= 3600)); then
        text+="$((elapsed / 3600)) hours "
    fi
    if ((elapsed >= 60)); then
        text+="$((elapsed / 60 % 60)) minutes "
    fi
    text+="$((elapsed % 60)) seconds"
    echo "$phase completed in $text"
}

# runPhase NAME: one phase as stock runs it (skip flags read now, header,
# dumpVars, the phase's variable or function, footer, cd into the source root).
runPhase() {
    local curPhase=$*
    case $curPhase in
    unpackPhase) if [[ -n ${dontUnpack-} ]]; then return 0; fi ;;
    patchPhase) if [[ -n ${dontPatch-} ]]; then return 0; fi ;;
    configurePhase) if [[ -n ${dontConfigure-} ]]; then return 0; fi ;;
    buildPhase) if [[ -n ${dontBuild-} ]]; then return 0; fi ;;
    checkPhase) if [[ -z ${doCheck-} ]]; then return 0; fi ;;
    installPhase) if [[ -n ${dontInstall-} ]]; then return 0; fi ;;
    fixupPhase) if [[ -n ${dontFixup-} ]]; then return 0; fi ;;
    installCheckPhase) if [[ -z ${doInstallCheck-} ]]; then return 0; fi ;;
    distPhase) if [[ -z ${doDist-} ]]; then return 0; fi ;;
    esac

    showPhaseHeader "$curPhase"
    dumpVars

    local startTime endTime
    startTime=$(date +%s)

    # A non-empty variable named like the phase wins over the function.
    eval "${!curPhase:-$curPhase}"

    endTime=$(date +%s)
    showPhaseFooter "$curPhase" "$startTime" "$endTime"

    if [[ $curPhase == unpackPhase ]]; then
        if [[ -n ${sourceRoot-} ]]; then
            chmod +x -- "$sourceRoot"
        fi
        cd -- "${sourceRoot:-.}"
    fi
}

genericBuild() {
    export GZIP_NO_TIMESTAMPS=1

    if [[ -f ${buildCommandPath-} ]]; then
        source "$buildCommandPath"
        return
    fi
    if [[ -n ${buildCommand-} ]]; then
        eval "$buildCommand"
        return
    fi

    if [[ -z ${phases[*]-} ]]; then
        phases="${prePhases[*]-} unpackPhase patchPhase ${preConfigurePhases[*]-} \
configurePhase ${preBuildPhases[*]-} buildPhase checkPhase \
${preInstallPhases[*]-} installPhase ${preFixupPhases[*]-} fixupPhase installCheckPhase \
${preDistPhases[*]-} distPhase ${postPhases[*]-}"
    fi

    # Split once: later changes to the lists do not affect this build.
    # shellcheck disable=SC2068
    for curPhase in ${phases[*]}; do
        runPhase "$curPhase"
    done
}

# ---------------------------------------------------------------------------
runHook postHook
runHook userHook
dumpVars

if [[ $__nixpkgs_setup_set_original != *e* ]]; then
    set +e
fi
if [[ $__nixpkgs_setup_set_original != *u* ]]; then
    set +u
fi
unset -v __nixpkgs_setup_set_original
