# GNU hello in the variants the demo and the VM tests build: stock, with a one-line
# source change, and the checkpointed pair (a full build, then the changed source rebuilt
# incrementally from its checkpoint).
{
  hello,
  prepareCheckpointBuild,
  mkCheckpointBuild,
}:
rec {
  # The one line added to src/hello.c. A comment: the program is unchanged, but make
  # must recompile hello.o (and only hello.o) and relink.
  changedLine = "/* checkpoint-builder: the one changed line */";

  stock = hello;

  changedStock = hello.overrideAttrs (prev: {
    postPatch = (prev.postPatch or "") + ''
      sed -i '1i ${changedLine}' src/hello.c
    '';
  });

  # A full build with checkpoint-builder; `base.checkpoint` holds its layers.
  base = prepareCheckpointBuild stock;

  # changedStock rebuilt from base's checkpoint.
  changed = mkCheckpointBuild changedStock base;
}
