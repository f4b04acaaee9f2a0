# Test-stdenv hook: before fixup, move $out/{man,doc,info} (or the directories
# named by forceShare) under $out/share.

preFixupHooks+=(_moveToShare)

_moveToShare() {
    if [[ -n $__structuredAttrs ]]; then
        if [[ -z ${forceShare-} ]]; then
            forceShare=(man doc info)
        fi
    else
        # shellcheck disable=SC2206
        forceShare=(${forceShare:-man doc info})
    fi
    local dir
    for dir in "${forceShare[@]}"; do
        if [[ ! -d $out/$dir ]]; then
            continue
        fi
        if [[ -d $out/share/$dir ]]; then
            echo "both $dir/ and share/$dir/ exist in $out: leaving them alone"
        else
            echo "moving $out/$dir to $out/share/$dir"
            mkdir -p "$out/share"
            mv -- "$out/$dir" "$out/share/"
        fi
    done
}
