# What a CI needs to reuse its last good build without impure evaluation: the base
# checkpoint is named in a file committed to the repository, read at evaluation time.
# Protocol (which base to pick, how the file is updated, caching, GC): docs/ci.md.
{
  # from ../stdenv-overlay/adapter.nix
  withCheckpoint,
  storePathInput,
}:
let
  # Lines of the file without surrounding blanks, dropping empty lines and `#` comments.
  contentLines =
    text:
    let
      lines = builtins.filter builtins.isString (builtins.split "\n" text);
      stripped = map (
        line:
        let
          m = builtins.match "[[:space:]]*([^[:space:]]*([[:space:]]+[^[:space:]]+)*)[[:space:]]*" line;
        in
        if m == null then line else builtins.head m
      ) lines;
    in
    builtins.filter (line: line != "" && builtins.substring 0 1 line != "#") stripped;
in
rec {
  /**
    readCheckpointBase :: path -> null | string

    The checkpoint named in `baseFile`: null when the file is missing, empty (comments
    aside) or holds `null`; else its one store path, as a string whose context makes it an
    input of the derivation that uses it (see storePathInput in the adapter).
  */
  readCheckpointBase =
    baseFile:
    if !builtins.pathExists baseFile then
      null
    else
      let
        lines = contentLines (builtins.readFile baseFile);
      in
      if lines == [ ] || lines == [ "null" ] then
        null
      else if builtins.length lines == 1 then
        storePathInput (builtins.head lines)
      else
        throw "readCheckpointBase: ${toString baseFile} must hold one store path or `null`, found ${toString (builtins.length lines)} lines";

  /**
    ciBuild :: { drv, baseFile } -> derivation

    `drv` built with checkpoint-builder, producing a checkpoint, and reusing the checkpoint
    named in `baseFile` (a full build when it names none). The result carries
      passthru.checkpointBase  the base used (null or the store path), and
      passthru.withoutBase     the same build without a base, for a CI to fall back on
                               when the base cannot be fetched.
  */
  ciBuild =
    { drv, baseFile }:
    let
      base = readCheckpointBase baseFile;
    in
    (withCheckpoint drv base).overrideAttrs (prev: {
      passthru = (prev.passthru or { }) // {
        checkpointBase = base;
        withoutBase = withCheckpoint drv null;
      };
    });
}
