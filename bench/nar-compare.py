#!/usr/bin/env python3
"""Compares the outputs of two Nix builds of the same package, NAR by NAR, modulo each
build's own store paths (bench/corpus.sh).

Usage: nar-compare.py A_PATHS B_PATHS [--keep DIR]

A_PATHS and B_PATHS are files listing one build's output paths (as `nix-store --realise`
prints them). Outputs are matched by name (the part after the hash); a `checkpoint`
output is ignored. Each build's NARs (`nix-store --dump`) have the hashes of that build's
own outputs replaced by a placeholder derived from the path's name, and the compiler seed
the reproducible-builds hook derives from `$out` (`-frandom-seed=` and the first ten
characters of the hash) likewise, as tests/common/nar.rs does; so are the pieces a compiler
keeps of them (the hash's tail with the name, any 8 characters of the hash). The NARs are
the same when every byte is equal as built or equal once normalised: a key of one side can
match text that is no path of its own (a one-character tail `c-patch-2.7.6` where `-patc`
and `-patch-2.7.6/lib`, two of gcc's 16-byte pieces of a path, lie side by side), and the
other side's same text is then left alone. Normalising keeps every length.

Prints `identical` and exits 0, or prints `differs:` and, per differing output, which files
differ and where (the first differing offset and, for ELF files, the section holding it)
and exits 1. With --keep DIR, the normalised trees of a differing output are restored under
DIR/a and DIR/b for a closer look.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HASH_LEN = 32
SEED_FLAG = b"-frandom-seed="
SEED_LEN = 10


def placeholder_for(name):
    out = "@" + "".join(c if c.isalnum() or c in "+._-" else "_" for c in name)
    return (out[:HASH_LEN] + "_" * HASH_LEN)[:HASH_LEN]


def split(path):
    base = os.path.basename(path)
    if len(base) <= HASH_LEN + 1 or base[HASH_LEN] != "-":
        return None
    return base[:HASH_LEN], base[HASH_LEN + 1:]


def rewrites(paths):
    table = {}
    for p in paths:
        hash_name = split(p)
        if hash_name is None:
            continue
        h, name = hash_name
        ph = placeholder_for(name)
        table[SEED_FLAG + h[:SEED_LEN].encode()] = SEED_FLAG + ph[:SEED_LEN].encode()
        table[h.encode()] = ph.encode()
        # The pieces a compiler keeps apart when it copies the path in overlapping stores:
        # the hash's last k characters and the name (`iw-cpio-2.13`).
        for k in range(1, HASH_LEN):
            table[(h[HASH_LEN - k:] + "-" + name).encode()] = (ph[HASH_LEN - k:] + "-" + name).encode()
        # And 8 characters of the hash anywhere: a path split so that no file holds it whole
        # (8-byte immediates).
        for i in range(HASH_LEN - 7):
            table.setdefault(h[i:i + 8].encode(), ph[i:i + 8].encode())
    return table


def normalise(data, table):
    if not table:
        return data
    pattern = re.compile(b"|".join(re.escape(k) for k in sorted(table, key=len, reverse=True)))
    return pattern.sub(lambda m: table[m.group(0)], data)


def same(a_raw, b_raw, a_norm, b_norm):
    """True if at every offset the two NARs agree as built or once normalised."""
    if a_norm == b_norm:
        return True
    if not len(a_raw) == len(b_raw) == len(a_norm) == len(b_norm):
        return False
    step = 1 << 16
    for off in range(0, len(a_raw), step):
        na, nb = a_norm[off:off + step], b_norm[off:off + step]
        if na == nb:
            continue
        ra, rb = a_raw[off:off + step], b_raw[off:off + step]
        if any(x != y and p != q for x, y, p, q in zip(ra, rb, na, nb)):
            return False
    return True


def read_paths(file):
    with open(file) as f:
        return [line.strip() for line in f if line.strip().startswith("/")]


def dump(path):
    return subprocess.run(["nix-store", "--dump", path], check=True, capture_output=True).stdout


def restore(nar, dest):
    subprocess.run(["nix-store", "--restore", dest], input=nar, check=True)


def section_at(path, offset):
    try:
        out = subprocess.run(["readelf", "-S", "-W", path], capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m:
            name, off, size = m.group(1), int(m.group(2), 16), int(m.group(3), 16)
            if off <= offset < off + size:
                return name
    return None


def explain(a_nar, b_nar, keep):
    lines = []
    tmp = tempfile.mkdtemp(prefix="nar-compare.")
    try:
        a_dir, b_dir = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        restore(a_nar, a_dir)
        restore(b_nar, b_dir)
        files = {}
        for root_dir, key in ((a_dir, "a"), (b_dir, "b")):
            if os.path.isfile(root_dir) or os.path.islink(root_dir):
                files.setdefault(".", {})[key] = root_dir
                continue
            for d, _, names in os.walk(root_dir):
                for n in names + [x for x in os.listdir(d) if os.path.islink(os.path.join(d, x))]:
                    full = os.path.join(d, n)
                    files.setdefault(os.path.relpath(full, root_dir), {})[key] = full
        shown = 0
        for rel in sorted(files):
            pair = files[rel]
            if "a" not in pair or "b" not in pair:
                lines.append(f"  {rel}: only in {'a' if 'a' in pair else 'b'}")
                continue
            a, b = pair["a"], pair["b"]
            if os.path.islink(a) or os.path.islink(b):
                if not (os.path.islink(a) and os.path.islink(b) and os.readlink(a) == os.readlink(b)):
                    lines.append(f"  {rel}: symlink differs")
                continue
            if os.access(a, os.X_OK) != os.access(b, os.X_OK):
                lines.append(f"  {rel}: executable bit differs")
            with open(a, "rb") as fa, open(b, "rb") as fb:
                da, db = fa.read(), fb.read()
            if da == db:
                continue
            first = next((i for i in range(min(len(da), len(db))) if da[i] != db[i]), min(len(da), len(db)))
            ndiff = sum(1 for x, y in zip(da, db) if x != y)
            sec = section_at(a, first) if da[:4] == b"\x7fELF" else None
            lines.append(
                f"  {rel}: {len(da)} vs {len(db)} bytes, {ndiff} differing, first at {first:#x}"
                + (f" (section {sec})" if sec else "")
                + f": {da[first:first + 24]!r} vs {db[first:first + 24]!r}"
            )
            shown += 1
            if shown >= 12:
                lines.append("  ...")
                break
        if keep:
            os.makedirs(keep, exist_ok=True)
            for key, src in (("a", a_dir), ("b", b_dir)):
                shutil.rmtree(os.path.join(keep, key), ignore_errors=True)
                subprocess.run(["chmod", "-R", "u+w", src])
                shutil.move(src, os.path.join(keep, key))
    finally:
        subprocess.run(["chmod", "-R", "u+w", tmp])
        shutil.rmtree(tmp, ignore_errors=True)
    return lines


def main():
    args = sys.argv[1:]
    keep = None
    if "--keep" in args:
        i = args.index("--keep")
        keep = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    a_paths, b_paths = read_paths(args[0]), read_paths(args[1])
    a_table, b_table = rewrites(a_paths), rewrites(b_paths)
    by_name = lambda paths: {split(p)[1]: p for p in paths if not p.endswith("-checkpoint")}
    a_out, b_out = by_name(a_paths), by_name(b_paths)
    if set(a_out) != set(b_out):
        print(f"differs: outputs {sorted(a_out)} vs {sorted(b_out)}")
        return 1
    report = []
    for name in sorted(a_out):
        a_raw, b_raw = dump(a_out[name]), dump(b_out[name])
        a_nar, b_nar = normalise(a_raw, a_table), normalise(b_raw, b_table)
        if not same(a_raw, b_raw, a_nar, b_nar):
            report.append(f" {name}:")
            report.extend(explain(a_nar, b_nar, keep and os.path.join(keep, name)))
    if report:
        print("differs:")
        print("\n".join(report))
        return 1
    print(f"identical ({len(a_out)} output(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
