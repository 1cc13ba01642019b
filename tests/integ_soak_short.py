"""The soak (bench/soak.py) in a shortened form for CI: 25 iterations of the llm policy on
the emulator against fake_llm.py with random 429s, 529s, hangs, dropped streams, garbage
and truncated replies. Fails on a lost candidate, growing descriptors, a damaged database
or a run that does not complete its budget."""
import os
import subprocess
import sys

root = os.environ["KILN_SOURCE_ROOT"]
p = subprocess.run([sys.executable, os.path.join(root, "bench/soak.py"), "--iterations", "25",
                    "--sample-at", "10", "--seed", "3", "--kiln", os.environ["KILN_BIN"]])
sys.exit(p.returncode)
