# A project's `mkDrv` with the checkpoint attributes: `checkpoint` adds the `checkpoint`
# output (the builder writes every phase's layer there), `base` (a checkpoint's store path as
# a string, or null) becomes `checkpointBase = builtins.storePath base`, so Nix puts that
# earlier checkpoint in the sandbox and the builder reuses it. `benchSalt`, when non-null, is
# added to every derivation (fresh derivations for benchmarks and test runs; builds meant to
# reuse each other's checkpoints must share it, as it is part of the layer keys).
{ mkDrv, checkpoint ? false, base ? null, benchSalt ? null }:
assert base == null || checkpoint
  || throw "a checkpointBase needs the checkpoint output as well (checkpoint = true)";
attrs: mkDrv (attrs // { inherit benchSalt; }
  // (if checkpoint then { outputs = (attrs.outputs or [ "out" ]) ++ [ "checkpoint" ]; } else { })
  // (if base == null then { } else { checkpointBase = builtins.storePath base; }))
