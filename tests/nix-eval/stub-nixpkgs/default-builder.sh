# stub: stands for nixpkgs pkgs/stdenv/generic/default-builder.sh (never run)
