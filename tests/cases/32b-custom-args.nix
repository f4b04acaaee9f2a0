# Custom `args`: bash runs them as given (no stdenv setup, no phases).
{ mkDrv, ... }:
mkDrv {
  name = "case-32b";
  args = [
    "-c"
    ''
      /usr/bin/mkdir -p "$out"
      echo "custom args: 0=$0 #=$# 1=$1 flags=$-" >"$out/args"
      echo "stdenv setup sourced: ''${SOURCE_DATE_EPOCH-no}" >>"$out/args"
    ''
    "zero"
    "one"
  ];
}
