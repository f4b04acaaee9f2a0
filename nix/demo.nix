# `nix run .#demo`: build GNU hello with checkpoints, change one line of src/hello.c,
# rebuild incrementally, and show what the second build did. The derivations are
# instantiated when the flake is evaluated; the script only realises them (with the nix
# on the user's PATH, against the user's store), so it needs no nixpkgs at run time.
{
  writeShellApplication,
  coreutils,
  gnugrep,
  gnused,
  hello,
  prepareCheckpointBuild,
  mkCheckpointBuild,
}:
let
  v = import ./hello-variants.nix { inherit hello prepareCheckpointBuild mkCheckpointBuild; };
  # The .drv files (and their closure), not their outputs, are the script's dependencies.
  drv = d: builtins.unsafeDiscardOutputDependency d.drvPath;
  path = p: builtins.unsafeDiscardStringContext (toString p);
in
writeShellApplication {
  name = "checkpoint-builder-demo";
  runtimeInputs = [
    coreutils
    gnugrep
    gnused
  ];
  text = ''
    base_drv=${drv v.base}
    changed_drv=${drv v.changed}
    base_out=${path v.base.out}
    base_checkpoint=${path v.base.checkpoint}
    changed_out=${path v.changed.out}
    changed_checkpoint=${path v.changed.checkpoint}

    if ! command -v nix-store >/dev/null; then
      echo "checkpoint-builder-demo: nix-store is not on PATH" >&2
      exit 1
    fi

    say() { printf '\n== %s\n' "$*"; }

    # realise DRV OUT: builds DRV unless OUT is already valid; prints the seconds taken.
    realise() {
      if nix-store --check-validity "$2" 2>/dev/null; then
        echo "   (already in the store from an earlier run: showing that build's log;"
        echo "    nix-store --delete $2 and its checkpoint to see it build again)"
        return
      fi
      local start end
      start=''${EPOCHREALTIME/./}
      nix-store --realise "$1" >/dev/null
      end=''${EPOCHREALTIME/./}
      echo "   took $(( (end - start) / 1000 )) ms"
    }

    # Compiler invocations in a build log: automake's silent "CC x.o" lines, or full
    # command lines with "-c ... -o x.o".
    compiled() {
      nix-store --read-log "$1" | grep -E '^[[:space:]]*CC[[:space:]]+[^[:space:]]+\.o[[:space:]]*$|[[:space:]]-c[[:space:]].*-o[[:space:]]+[^[:space:]]+\.o' || true
    }

    say "1/3 full build of GNU hello with checkpoint-builder"
    echo "   $base_drv"
    realise "$base_drv" "$base_out"
    echo "   out:        $base_out"
    echo "   checkpoint: $base_checkpoint ($(du -sh "$base_checkpoint" | cut -f1))"
    echo "   compiler invocations: $(compiled "$base_drv" | wc -l)"

    say "2/3 the change: one line added to src/hello.c by postPatch"
    echo "   ${v.changedLine}"

    say "3/3 incremental rebuild from the first build's checkpoint"
    echo "   $changed_drv"
    realise "$changed_drv" "$changed_out"
    echo "   out:        $changed_out"
    echo "   checkpoint: $changed_checkpoint"
    echo "   compiler invocations:"
    compiled "$changed_drv" | sed 's/^/     /'
    echo "   checkpoint-builder's report:"
    nix-store --read-log "$changed_drv" | grep '^checkpoint-builder:' | sed 's/^/     /' || true

    say "the new checkpoint does not reference the old one"
    if nix-store --query --references "$changed_checkpoint" | grep -qxF "$base_checkpoint"; then
      echo "   unexpected: $changed_checkpoint references $base_checkpoint" >&2
      exit 1
    fi
    echo "   so the first build's checkpoint can be garbage-collected on its own."
  '';
}
