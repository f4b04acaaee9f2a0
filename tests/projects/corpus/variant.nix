# What a corpus project adds for a build variant (tests/projects/variant.nix does this for
# hello, lua and zstd with edits of their own; here the edit is the same for every project):
#   "base"     nothing;
#   "oneline"  one line appended to `file` by `postPatch`: a top-level `__asm__` statement
#              that puts the string "(one-line change)" into the object's `.comment`
#              section, so the change reaches every program and library linked from it
#              whatever the language (C or C++), visibility or section garbage collection;
#   "header"   the same line appended to `header`, so every object compiled from a unit
#              that includes it changes (harmless when a unit includes it twice);
#   "install"  `postInstall` writes one extra file into `out`;
#   "rename"   a version bump of `name`, same source: its last character changed (`9` to
#              `8`, anything else to `9`), so the output paths keep their length;
#   "longer"   a version bump that makes `name` one character longer (its last character
#              `c` becomes `c0`, as `-2.9` might become `-2.90`), so no output path keeps
#              its length.
# The edits are checked, as in tests/projects/variant.nix.
{ variant, file, header, name }:
let
  line = ''__asm__(".pushsection .comment; .string \"checkpoint corpus: (one-line change)\"; .popsection");'';
  edit = name: path: {
    postPatch = ''
      printf '\n%s\n' '${line}' >> ${path}
      if ! grep -q '(one-line change)' ${path}; then
        echo "variant ${name}: the edit did not apply to ${path}" >&2
        exit 1
      fi
    '';
  };
in
if variant == "base" then { }
else if variant == "oneline" then edit "oneline" file
else if variant == "header" then edit "header" header
else if variant == "install" then {
  postInstall = ''
    mkdir -p $out/share
    echo "installed by the install variant" > $out/share/checkpoint-install-variant.txt
  '';
}
else if variant == "rename" then {
  name = let n = builtins.stringLength name; last = builtins.substring (n - 1) 1 name;
    in builtins.substring 0 (n - 1) name + (if last == "9" then "8" else "9");
}
else if variant == "longer" then { name = name + "0"; }
else throw "unknown variant ${variant} (base, oneline, header, install, rename, longer)"
