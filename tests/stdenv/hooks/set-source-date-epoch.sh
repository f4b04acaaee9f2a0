# Test-stdenv hook: after unpacking, raise SOURCE_DATE_EPOCH to the newest
# regular file of the source root (files newer than the build top's parent are
# ignored as generated).

postUnpackHooks+=(_sourceDateEpochFromSourceRoot)

updateSourceDateEpoch() {
    local dir=$1 newest now
    newest=$(find "$dir" -type f ! -newer "$NIX_BUILD_TOP/.." -printf '%T@\n' | sort -n | tail -n 1)
    newest=${newest%%.*}
    if [[ -z $newest ]] || ((newest <= SOURCE_DATE_EPOCH)); then
        return 0
    fi
    echo "setting SOURCE_DATE_EPOCH to $newest (newest file in $dir)"
    export SOURCE_DATE_EPOCH=$newest
    now=$(date +%s)
    if ((newest > now - 60)); then
        echo "warning: a file in $dir is less than a minute old; SOURCE_DATE_EPOCH may not be reproducible"
    fi
}

_sourceDateEpochFromSourceRoot() {
    if [[ -n ${sourceRoot-} ]]; then
        updateSourceDateEpoch "$sourceRoot"
    fi
}
