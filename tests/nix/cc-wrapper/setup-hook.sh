# Setup hook of the test compiler wrapper (@out@), sourced by setup.sh for each way a
# derivation depends on it, with `hostOffset` and `targetOffset` saying how.

# With strictDeps only a build-time dependency's hook counts (a native build without
# strictDeps takes it from any input).
[[ -z ${strictDeps-} ]] || ((hostOffset < 0)) || return 0

# ccWrapperRoleSuffix OFFSET: the variable-name suffix of the platform at OFFSET relative to
# the build (-1 build, 0 host, 1 target) into `roleSuffix`.
ccWrapperRoleSuffix() {
    case $1 in
        -1) roleSuffix=_FOR_BUILD ;;
        0) roleSuffix= ;;
        1) roleSuffix=_FOR_TARGET ;;
        *)
            echo "@out@: used as an improper sort of dependency (offset $1)" >&2
            return 1
            ;;
    esac
}

# Env hook, run for every dependency: its headers and libraries reach the compiler and
# linker of the platform it runs on.
ccWrapperAddDepFlags() {
    local roleSuffix
    ccWrapperRoleSuffix "$depHostOffset"
    if [[ -d $1/include ]]; then
        export NIX_CFLAGS_COMPILE${roleSuffix}+=" -isystem $1/include"
    fi
    if [[ -d $1/lib64 && ! -L $1/lib64 ]]; then
        export NIX_LDFLAGS${roleSuffix}+=" -L$1/lib64"
    fi
    # Only a lib/ with libraries in it (not, say, lib/python3/ alone).
    if compgen -G "$1/lib/lib*" >/dev/null; then
        export NIX_LDFLAGS${roleSuffix}+=" -L$1/lib"
    fi
}

# The wrapper compiles for the platform at targetOffset: it serves that role, and its env
# hook collects the dependencies of that platform.
ccWrapperRoleSuffix "$targetOffset"
case $targetOffset in
    -1) export NIX_CC_WRAPPER_TARGET_BUILD_@salt@=1 ;;
    0) export NIX_CC_WRAPPER_TARGET_HOST_@salt@=1 ;;
    1) export NIX_CC_WRAPPER_TARGET_TARGET_@salt@=1 ;;
esac
addEnvHooks "$targetOffset" ccWrapperAddDepFlags

# The tools build systems look up by variable.
export NIX_CC${roleSuffix}=@out@ NIX_BINTOOLS${roleSuffix}=@out@
export CC${roleSuffix}=gcc CXX${roleSuffix}=g++ LD${roleSuffix}=ld
for ccWrapperTool in ar as nm objcopy objdump ranlib readelf size strings strip; do
    if [[ -x /usr/bin/$ccWrapperTool ]]; then
        export "${ccWrapperTool^^}${roleSuffix}=$ccWrapperTool"
    fi
done
unset -v ccWrapperTool roleSuffix
