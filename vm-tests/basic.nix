# A package from nixpkgs built by a stdenv adapted with withCheckpoints: it runs on
# checkpoint-builder, gets a checkpoint output, and its `out` is bit-identical to the
# stock build's once each one's own store path is replaced by a placeholder.
{ pkgs }:
let
  inherit (pkgs) lib;
  common = import ./lib/common.nix { inherit pkgs; };

  stock = pkgs.hello;
  adapted = pkgs.hello.override { stdenv = pkgs.withCheckpoints pkgs.stdenv; };
in
assert lib.assertMsg (lib.hasSuffix "/bin/checkpoint-builder" adapted.drvAttrs.builder)
  "withCheckpoints did not make checkpoint-builder the builder: ${adapted.drvAttrs.builder}";
assert lib.assertMsg (
  adapted.outputs == stock.outputs ++ [ "checkpoint" ]
) "withCheckpoints should append a checkpoint output: ${toString adapted.outputs}";
pkgs.testers.runNixOSTest {
  name = "checkpoint-builder-basic";

  nodes.machine = {
    imports = [ common.node ];
    system.extraDependencies = common.offlineDeps {
      build = [
        stock
        adapted
      ];
      inputsOf = [
        stock
        adapted
      ];
    };
  };

  testScript = ''
    ${common.helpers}

    stock = ${common.pyPaths stock}
    adapted = ${common.pyPaths adapted}

    machine.wait_for_unit("multi-user.target")

    with subtest("stock build"):
        realise(machine, stock["drv"])

    with subtest("the adapted build runs on checkpoint-builder and writes a checkpoint"):
        realise(machine, adapted["drv"])
        log = build_log(machine, adapted["drv"])
        report = builder_report(log)
        assert report, "no checkpoint-builder lines in the build log:\n" + log[-4000:]
        print("\n".join(report))
        objects = compiled_objects(log)
        assert "hello.o" in objects and len(objects) >= 5, f"expected a full compile, got {sorted(objects)}"
        machine.succeed(f"test -d {adapted['checkpoint']}")
        machine.succeed(f"test -n \"$(ls -A {adapted['checkpoint']})\"")

    with subtest("out equals the stock out modulo its own path"):
        assert_same_modulo_own_path(machine, stock["out"], adapted["out"])
        machine.succeed(f"{adapted['out']}/bin/hello | grep -qx 'Hello, world!'")
  '';
}
