# JSON file -> the same JSON indented by two spaces, keys sorted: the form of the expected
# files, and what the check script diffs when a case does not match. (Nix is the one
# tool the script can rely on, so it formats JSON itself.)
file:
let
  pretty =
    indent: v:
    let
      next = indent + "  ";
      block =
        open: close: items:
        if items == [ ] then
          open + close
        else
          open + "\n" + builtins.concatStringsSep ",\n" (map (i: next + i) items) + "\n" + indent + close;
    in
    if builtins.isAttrs v then
      block "{" "}" (map (k: builtins.toJSON k + ": " + pretty next v.${k}) (builtins.attrNames v))
    else if builtins.isList v then
      block "[" "]" (map (pretty next) v)
    else
      builtins.toJSON v;
in
pretty "" (builtins.fromJSON (builtins.readFile file)) + "\n"
