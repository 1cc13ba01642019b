"""Shared by the bring-your-own-kernel tests (integ_byo, integ_byo_examples,
integ_byo_refs): a check that counts failures, running kiln, finding a python3 with numpy."""
import os
import shutil
import subprocess

KILN = os.environ["KILN_BIN"]
_fails = [0]


def check(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        _fails[0] += 1
        if detail:
            print(detail[-4000:])


def failed():
    return _fails[0] > 0


def kiln(args, env, timeout=600):
    return subprocess.run([KILN] + args, capture_output=True, text=True, env=env, timeout=timeout)


def numpy_python():
    for p in [os.environ.get("KILN_PYTHON"), "python3", "/usr/bin/python3"]:
        if p and shutil.which(p) and subprocess.run([p, "-c", "import numpy"], capture_output=True).returncode == 0:
            return shutil.which(p)
    return None
