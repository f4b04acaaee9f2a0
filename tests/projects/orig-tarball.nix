# The upstream orig tarball of one Debian source package in `sources`, the
# directory scripts/fetch-sources.sh fills (`<srcpkg>_<version>.orig.tar.<ext>`;
# the detached `.asc` signatures are skipped).  Returns a path, so only the
# tarball itself is copied into the store, never the whole directory.
sources: srcpkg:
let
  dir = if builtins.isPath sources then sources else /. + sources;
  pattern = "${builtins.replaceStrings [ "." "+" ] [ "\\." "\\+" ] srcpkg}_.*\\.orig\\.tar\\.(gz|xz|bz2|zst|lzma)";
  names = builtins.filter (n: builtins.match pattern n != null)
    (builtins.attrNames (builtins.readDir dir));
in
if builtins.length names == 1 then dir + "/${builtins.head names}"
else throw "expected one ${srcpkg}_*.orig.tar.* in ${toString dir}, found ${toString (builtins.length names)}; run scripts/fetch-sources.sh ${toString dir}"
