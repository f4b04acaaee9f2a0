# Reads a pin file in the format of sources.lock (see its header): an attribute set from
# project name to { package, version, file, sha256 }.
lock:
let
  lines = builtins.filter (l: builtins.isString l && l != "" && builtins.substring 0 1 l != "#")
    (builtins.split "\n" (builtins.readFile lock));
  fields = line: builtins.filter (f: builtins.isString f && f != "") (builtins.split "[ \t]+" line);
  pin = line:
    let f = fields line; in
    if builtins.length f != 5 then throw "${toString lock}: malformed pin line: ${line}"
    else {
      name = builtins.elemAt f 0;
      value = {
        package = builtins.elemAt f 1;
        version = builtins.elemAt f 2;
        file = builtins.elemAt f 3;
        sha256 = builtins.elemAt f 4;
      };
    };
in
builtins.listToAttrs (map pin lines)
