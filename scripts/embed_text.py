#!/usr/bin/env python3
"""Build helper: writes a C header defining `static const char NAME[]` with the bytes of a
text file (used for archive/promote_py.py.in, the PyTorch module template)."""
import sys

src, out, name = sys.argv[1:4]
data = open(src, "rb").read()
lines = ["/* generated from %s by scripts/embed_text.py: do not edit */" % src.split("/")[-1],
         "static const char %s[] = {" % name]
for i in range(0, len(data), 16):
    lines.append("\t" + ", ".join(str(b) for b in data[i:i + 16]) + ",")
lines.append("\t0};")
open(out, "w").write("\n".join(lines) + "\n")
