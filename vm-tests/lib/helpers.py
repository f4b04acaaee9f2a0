# Helpers shared by the checkpoint-builder VM tests (put before each test script).
import os
import re

# Same length as a store path's hash part; replaces it when two outputs are compared.
PLACEHOLDER = "0" * 32


def store_hash(path: str) -> str:
    """The hash part of a store path."""
    return path.removeprefix("/nix/store/")[:32]


def realise(machine, drv: str, user: str | None = None) -> str:
    """Builds drv (as user, through the daemon, when given); returns nix-store's output."""
    command = f"nix-store --realise {drv} 2>&1"
    if user is not None:
        command = f"su - {user} -c '{command}'"
    return machine.succeed(command)


def build_log(machine, drv: str) -> str:
    """The log Nix kept of drv's build."""
    return machine.succeed(f"nix-store --read-log {drv}")


SILENT_COMPILE = re.compile(r"^\s*CC\s+(\S+\.o)\s*$")
COMPILE_FLAG = re.compile(r"\s-c(\s|$)")
OBJECT_OUTPUT = re.compile(r"\s-o\s+(\S+\.o)(?=\s|$)")


def compiled_objects(log: str) -> set[str]:
    """Base names of the object files a build log shows being compiled: automake's
    silent "CC x.o" lines, or compiler command lines with -c and -o x.o."""
    objects: set[str] = set()
    for line in log.splitlines():
        match = SILENT_COMPILE.match(line)
        if match is None and COMPILE_FLAG.search(line):
            match = OBJECT_OUTPUT.search(line)
        if match is not None:
            objects.add(os.path.basename(match.group(1)))
    return objects


def builder_report(log: str) -> list[str]:
    """checkpoint-builder's own lines in a build log (its per-step summary)."""
    return [line for line in log.splitlines() if line.startswith("checkpoint-builder:")]


def normalised_nar_hash(machine, path: str) -> str:
    """sha256 of the NAR of path with its own hash part replaced by PLACEHOLDER."""
    own = store_hash(path)
    return machine.succeed(
        f"nix-store --dump {path} | LC_ALL=C sed 's/{own}/{PLACEHOLDER}/g'"
        " | sha256sum | cut -d' ' -f1"
    ).strip()


def assert_same_modulo_own_path(machine, expected: str, actual: str) -> None:
    """Fails unless the two outputs are bit-identical once each one's own store path
    hash is replaced by the same placeholder."""
    if normalised_nar_hash(machine, expected) != normalised_nar_hash(machine, actual):
        _, diff = machine.execute(f"diff -r {expected} {actual} 2>&1 | head -n 50")
        raise Exception(f"{actual} differs from {expected} beyond its own path:\n{diff}")
