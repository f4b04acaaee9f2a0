# Writes a synthetic C project (for bench/scale.sh): UNITS compile units in src/, one header
# per 50 units in include/, a main program, a small program of its own (src/tool.c, linked
# alone into `synth-tool`: a change there relinks kilobytes however large the tree), and a
# Makefile that builds every object (with -g and dependency files), a static library of the
# units and both programs, and installs them and the library.
# Deterministic: the same UNITS give the same files byte for byte.
import os
import random
import sys

units, root = int(sys.argv[1]), sys.argv[2]
rng = random.Random(19)
os.makedirs(f"{root}/src", exist_ok=True)
os.makedirs(f"{root}/include", exist_ok=True)
groups = (units + 49) // 50
for g in range(groups):
    with open(f"{root}/include/g{g:03}.h", "w") as h:
        h.write(f"#ifndef G{g}_H\n#define G{g}_H\n#define G{g}_SCALE {rng.randrange(1, 1000)}\n")
        for u in range(g * 50, min(units, g * 50 + 50)):
            h.write(f"long u{u:05}_entry(long x);\n")
        h.write("#endif\n")
for u in range(units):
    g = u // 50
    with open(f"{root}/src/u{u:05}.c", "w") as c:
        c.write(f'#include "g{g:03}.h"\n')
        if u == 0:
            c.write('const char *synth_banner = "synthetic project";\n')
        c.write(f"static const long table_{u}[] = {{")
        c.write(", ".join(str(rng.randrange(1 << 30)) for _ in range(4096)))
        c.write("};\n")
        for f in range(4):
            a, b, k = rng.randrange(1, 1 << 20), rng.randrange(1, 1 << 20), rng.randrange(1, 31)
            c.write(
                f"static long f{f}(long x) {{\n"
                f"  long s = {a};\n"
                f"  for (int i = 0; i < {k}; i++) s = (s * {b} + x + table_{u}[(x + i) & 4095]) ^ (s >> 7);\n"
                f"  return s + G{g}_SCALE;\n}}\n"
            )
        body = " + ".join(f"f{f}(x + {f})" for f in range(4))
        c.write(f"long u{u:05}_entry(long x) {{ return {body}; }}\n")
with open(f"{root}/src/main.c", "w") as m:
    m.write("#include <stdio.h>\nextern const char *synth_banner;\n")
    for u in range(units):
        m.write(f"long u{u:05}_entry(long x);\n")
    m.write("int main(void) {\n  long s = 0;\n")
    for u in range(units):
        m.write(f"  s += u{u:05}_entry({u});\n")
    m.write('  printf("%s %ld\\n", synth_banner, s);\n  return 0;\n}\n')
with open(f"{root}/src/tool.c", "w") as t:
    t.write('#include <stdio.h>\nint main(void) {\n  puts("synthetic tool");\n  return 0;\n}\n')
with open(f"{root}/Makefile", "w") as mk:
    mk.write(
        "CC ?= cc\nCFLAGS ?= -O1 -g\nPREFIX ?= /usr/local\n"
        "UNITS := $(sort $(wildcard src/u*.c))\nOBJS := $(UNITS:.c=.o)\n"
        "all: synth synth-tool\n"
        "%.o: %.c\n\t$(CC) $(CFLAGS) -Iinclude -MMD -MP -c -o $@ $<\n"
        "libsynth.a: $(OBJS)\n\trm -f $@\n\tar rcs $@ $(OBJS)\n"
        "synth: src/main.o libsynth.a\n\t$(CC) $(CFLAGS) -o $@ src/main.o libsynth.a\n"
        "synth-tool: src/tool.o\n\t$(CC) $(CFLAGS) -o $@ src/tool.o\n"
        "install: synth synth-tool libsynth.a\n\tmkdir -p $(PREFIX)/bin $(PREFIX)/lib\n"
        "\tcp synth $(PREFIX)/bin/synth\n\tcp synth-tool $(PREFIX)/bin/synth-tool\n"
        "\tcp libsynth.a $(PREFIX)/lib/libsynth.a\n"
        "-include $(OBJS:.o=.d) src/main.d src/tool.d\n"
    )
