# A setup hook for case 41: a function that finds its own file through BASH_SOURCE.
hookLocation() {
    echo "defined in ${BASH_SOURCE[0]}"
}
