# stub: stands for nixpkgs pkgs/stdenv/generic/source-stdenv.sh (never run)
