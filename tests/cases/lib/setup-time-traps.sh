# A setup hook for case 39a: traps set while setup runs, before genericBuild.
trap 'echo "setup RETURN trap in ${FUNCNAME[0]-top}" >>"$NIX_BUILD_TOP/traps"' RETURN
trap 'echo "setup ERR trap in ${FUNCNAME[0]-top}, status $?" >>"$NIX_BUILD_TOP/traps"' ERR
trap '[[ $BASH_COMMAND != runPhase* ]] || echo "setup DEBUG trap before $BASH_COMMAND in ${FUNCNAME[0]-top}" >>"$NIX_BUILD_TOP/traps"' DEBUG
