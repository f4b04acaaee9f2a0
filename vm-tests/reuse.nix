# Incremental rebuild: GNU hello built with prepareCheckpointBuild, one line of
# src/hello.c changed, rebuilt with mkCheckpointBuild from the first build's checkpoint.
# Only hello.o is recompiled, the unpacked sources are restored rather than unpacked
# again, the result equals a clean stock build of the changed source, and the old
# checkpoint can be deleted once the new one exists.
{ pkgs }:
let
  common = import ./lib/common.nix { inherit pkgs; };
  inherit (common) hello;
in
pkgs.testers.runNixOSTest {
  name = "checkpoint-builder-reuse";

  nodes.machine = {
    imports = [ common.node ];
    system.extraDependencies = common.offlineDeps {
      build = [
        hello.base
        hello.changed
        hello.changedStock
      ];
      inputsOf = [
        hello.stock
        hello.base
      ];
    };
  };

  testScript = ''
    ${common.helpers}

    base = ${common.pyPaths hello.base}
    changed = ${common.pyPaths hello.changed}
    clean = ${common.pyPaths hello.changedStock}

    machine.wait_for_unit("multi-user.target")

    with subtest("full build that produces a checkpoint"):
        realise(machine, base["drv"])
        log = build_log(machine, base["drv"])
        full = compiled_objects(log)
        assert "hello.o" in full and len(full) >= 5, f"expected a full compile, got {sorted(full)}"
        assert "unpacking source archive" in log, "the full build should unpack the source"

    with subtest("one changed line: only hello.o is recompiled"):
        realise(machine, changed["drv"])
        log = build_log(machine, changed["drv"])
        print("\n".join(builder_report(log)))
        recompiled = compiled_objects(log)
        assert recompiled == {"hello.o"}, f"expected only hello.o to be recompiled, got {sorted(recompiled)}"
        # postPatch is read by patchPhase only, so unpackPhase's layer is reused.
        assert "unpacking source archive" not in log, "unpackPhase ran again instead of being restored"

    with subtest("the incremental out equals a clean stock build of the changed source"):
        realise(machine, clean["drv"])
        assert_same_modulo_own_path(machine, clean["out"], changed["out"])

    with subtest("the new checkpoint does not keep the old one alive"):
        references = machine.succeed(f"nix-store --query --references {changed['checkpoint']}").split()
        assert base["checkpoint"] not in references, "the new checkpoint references the old one"
        machine.succeed(f"nix-store --delete {base['checkpoint']}")
        machine.fail(f"test -e {base['checkpoint']}")
  '';
}
