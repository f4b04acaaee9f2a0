# The attributes a project adds for one build variant, to merge into its own:
#   "base"     nothing (the derivation is exactly the project's);
#   "oneline"  one line of one C file changed by `postPatch` (a sed `expression` on `file`),
#              the edit checked so a sed that no longer matches fails the build instead of
#              building the base source under another name;
#   "header"   one line of one header changed by `postPatch` (`headerExpression` on
#              `header`), checked the same way: the objects that include it must be
#              recompiled, whether or not the build records header dependencies;
#   "install"  an installPhase-only change: `postInstall` writes one extra file;
#   "rename"   a version bump of `name` (its last character changed), same source;
#   "rename-base" the base of "rename" (the project as is, as a derivation of its own).
# The package name keeps its length, so every variant's output paths have the same length (a
# checkpoint is reused only across same-length paths). Every edit adds the text
# "(one-line change)", which the changed program then prints.
{ variant, name, file, expression, header, headerExpression }:
let
  edit = name: file: expression: {
    postPatch = ''
      sed -i -e '${expression}' ${file}
      if ! grep -q '(one-line change)' ${file}; then
        echo "variant ${name}: the edit did not apply to ${file}" >&2
        exit 1
      fi
    '';
  };
in
if variant == "base" then { }
else if variant == "oneline" then edit "oneline" file expression
else if variant == "header" then edit "header" header headerExpression
else if variant == "rename-base" then {
  # A derivation of its own, so the rename tests never share their base with the others.
  renameTest = "1";
}
else if variant == "rename" then {
  renameTest = "1";
  name = let n = builtins.stringLength name; last = builtins.substring (n - 1) 1 name;
    in builtins.substring 0 (n - 1) name + (if last == "9" then "8" else "9");
}
else if variant == "install" then {
  postInstall = ''
    mkdir -p $out/share
    echo "installed by the install variant" > $out/share/checkpoint-install-variant.txt
  '';
}
else throw "unknown variant ${variant} (base, oneline, header, install, rename, rename-base)"
