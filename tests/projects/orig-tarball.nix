# The upstream orig tarball of one project, as sources.lock at the repository's root pins it
# (Debian source package, version, file name, sha256), from `sources`, the directory
# scripts/fetch-sources.sh fills. The file is added to the store as a fixed-output path with
# the pinned sha256 (flat, as `fetchurl` pins a tarball): a file whose content differs stops
# the evaluation with a message naming both hashes (and Nix itself refuses a path whose content
# is not the pinned one), so a wrong tarball can never reach a build.
#
#   import ./orig-tarball.nix sources "hello"
#   import ./orig-tarball.nix { inherit sources; lock = ./my.lock; } "hello"
args: project:
let
  sources = if builtins.isAttrs args then args.sources else args;
  lock = if builtins.isAttrs args && args ? lock then args.lock else ../../sources.lock;
  pins = import ./pins.nix lock;
  pin = pins.${project} or (throw "${toString lock} pins no project named ${project}");
  dir = if builtins.isPath sources then sources else /. + sources;
  file = dir + "/${pin.file}";
  actual = builtins.hashFile "sha256" file;
in
if !(builtins.pathExists file) then
  throw "${toString file} is missing (${pin.package} ${pin.version}, pinned in ${toString lock}); run scripts/fetch-sources.sh --dir ${toString dir} ${project}"
else if actual != pin.sha256 then
  throw "${toString file} does not match its pin (${pin.package} ${pin.version} in ${toString lock}): expected sha256 ${pin.sha256}, actual sha256 ${actual}"
else builtins.path {
  path = file;
  name = pin.file;
  recursive = false;
  sha256 = pin.sha256;
}
