# Entry script of every test-stdenv build (`bash -e source-stdenv.sh SCRIPT`):
# load the structured attributes if there are any, source $stdenv/setup, then
# the script given as $1 (default-builder.sh or a custom builder).
#
# Nix 2.8 sets NIX_ATTRS_SH_FILE to the path outside the sandbox; the file is
# then found as .attrs.sh in the build directory (the current directory).
if [ -e "${NIX_ATTRS_SH_FILE:-}" ]; then
    . "$NIX_ATTRS_SH_FILE"
elif [ -f .attrs.sh ]; then
    . ./.attrs.sh
fi
source "$stdenv/setup"
source "$1"
