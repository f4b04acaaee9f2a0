# `case` (a conformance case file, `{ mkDrv, ... }: mkDrv { ... }`) with a `checkpoint`
# output added after its own outputs, as a case file for tests/nix/harness.nix. Only the
# builder under test can fill that output, so such a case is built with it alone; the
# stock build of the unchanged case is the reference for the other outputs.
case: args:
(import case args).overrideAttrs (attrs: {
  outputs = (attrs.outputs or [ "out" ]) ++ [ "checkpoint" ];
})
