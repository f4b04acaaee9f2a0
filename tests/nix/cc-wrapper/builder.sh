# Builds the wrapper: bin/{cc,gcc,c++,g++,ld} around the host's tools, the role helpers they
# share, and the setup hook. `@out@`, `@salt@` and `@prog@` are filled in here.
set -eu -o pipefail

# The salt names this wrapper's own variables (as nixpkgs salts them with its target
# platform), so a second wrapper for another platform would not read or clobber them.
salt=$("$realCc" -dumpmachine)
salt=${salt//[-.]/_}

fill() { # fill TEMPLATE PROG DEST
    sed -e "s|@out@|$out|g" -e "s|@salt@|$salt|g" -e "s|@prog@|$2|g" "$1" >"$3"
}

mkdir -p "$out/bin" "$out/nix-support"
fill "$roles" "" "$out/nix-support/roles.bash"
fill "$hook" "" "$out/nix-support/setup-hook"
for name in cc gcc; do fill "$ccWrapper" "$realCc" "$out/bin/$name"; done
for name in c++ g++; do fill "$ccWrapper" "$realCxx" "$out/bin/$name"; done
fill "$ldWrapper" "$realLd" "$out/bin/ld"
chmod 0555 "$out"/bin/*
