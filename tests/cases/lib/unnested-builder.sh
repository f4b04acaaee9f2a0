# The older builder form, `bash -e default-builder.sh`: setup sourced and
# genericBuild called at the script's top level (no `source "$1"` frame).
source $stdenv/setup
genericBuild
