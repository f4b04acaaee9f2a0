# What a corpus project adds for a build variant (tests/projects/variant.nix does this for
# hello, lua and zstd with edits of their own; here the edit is the same for every project):
#   "base"     nothing;
#   "oneline"  one line appended to `file` by `postPatch`: a top-level `__asm__` statement
#              that puts the string "(one-line change)" into the object's `.comment`
#              section, so the change reaches every program and library linked from it
#              whatever the language (C or C++), visibility or section garbage collection;
#   "header"   the same line appended to `header`, so every object compiled from a unit
#              that includes it changes (harmless when a unit includes it twice);
#   "install"  `postInstall` writes one extra file into `out`.
# The edit is checked, as in tests/projects/variant.nix.
{ variant, file, header }:
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
else throw "unknown variant ${variant} (base, oneline, header, install)"
