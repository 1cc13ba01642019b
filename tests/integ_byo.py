"""Integration: bring your own kernel (README "Adding your own kernel"), the way a user
does it, entirely outside the source tree. (1) `kiln targets new` makes an axpy target
with a C reference, and `kiln targets new relu --from relu.cu --ref py` one guessed from
a kernel's signature whose numpy reference the user then writes; `kiln targets check`
first lists what to fill in, then passes. (2) Both are found through $KILN_TARGETS_DIR
next to the built-ins, searched with `kiln run --policy tune`, reviewed with `kiln log`
and `kiln show`, and promoted. (3) The source tree's `git status` is the same before and
after."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from integ_byo_common import check, failed, kiln, numpy_python

SRC = os.environ["KILN_SOURCE_ROOT"]

RELU = """// scaled leaky relu: y = x > 0 ? s*x : s*alpha*x
#ifndef BLOCK
#define BLOCK 256
#endif
extern "C" __global__ void __launch_bounds__(BLOCK)
scaled_relu(float *__restrict__ y, const float *__restrict__ x, float s, float alpha, long long n)
{
    long long i = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (i < n)
        y[i] = x[i] > 0.0f ? s * x[i] : s * alpha * x[i];
}
"""

RELU_REF = '''"""relu reference: y = s*x where x > 0, else s*alpha*x (leaky relu, scaled)."""
import numpy as np


def reference(inputs, scalars, sizes):
    x = inputs["x"]
    y = np.where(x > 0, scalars["s"] * x, scalars["s"] * scalars["alpha"] * x)
    return {"y": y}
'''


def git_status():
    return subprocess.run(["git", "-C", SRC, "status", "--porcelain", "--untracked-files=all"],
                          capture_output=True, text=True).stdout


def fill_in(path, changes):
    t = json.load(open(path))
    t.update(changes)
    json.dump(t, open(path, "w"), indent=1)


def make_targets(tdir, env, py):
    p = kiln(["targets", "new", "myaxpy", "--dir", tdir], env)
    check(p.returncode == 0 and "FILL IN" in p.stdout, "targets new myaxpy (C reference)", p.stdout + p.stderr)
    d = os.path.join(tdir, "myaxpy")
    p = kiln(["targets", "check", d], env)
    check(p.returncode == 1 and p.stdout.count("still says FILL IN") >= 4,
          "targets check lists the FILL IN lines of a fresh scaffold", "exit %d\n%s\n%s" % (p.returncode, p.stdout, p.stderr))
    fill_in(os.path.join(d, "target.json"), {"family": "blas", "summary": "y = a*x + y over fp32 vectors",
                                              "math": "y[i] = a*x[i] + y[i], i in [0, n)", "notes": "memory bound"})
    fill_in(os.path.join(d, "target.json"), {"symbols": {"n": {"verify": [1, 7, 1000, 4099], "bench": [65536]}}})
    for f in ("seed.cu", "reference.c"):
        path = os.path.join(d, f)
        text = open(path).read()
        open(path, "w").write(text.replace("FILL IN: ", "").replace("FILL IN", "written"))
    p = kiln(["targets", "check", d], env)
    check(p.returncode == 0 and "ok: the seed passes verification" in p.stdout and "ready:" in p.stdout,
          "targets check passes myaxpy", p.stdout + p.stderr)
    if not py:
        print("skip the reference.py target: no python3 with numpy (apt-get install python3-numpy)")
        return ["myaxpy"]
    kfile = os.path.join(tdir, "..", "relu.cu")
    open(kfile, "w").write(RELU)
    p = kiln(["targets", "new", "relu", "--from", kfile, "--dir", tdir, "--ref", "py"], env)
    d = os.path.join(tdir, "relu")
    t = json.load(open(os.path.join(d, "target.json"))) if p.returncode == 0 else {}
    names = [(b["name"], b["role"], b["dtype"]) for b in t.get("buffers", [])]
    scal = [s["name"] for s in t.get("scalars", [])]
    check(names == [("y", "inout", "f32"), ("x", "in", "f32")] and scal == ["s", "alpha"] and
          list(t.get("symbols", {})) == ["n"], "targets new --from guesses buffers, scalars and symbols: %s %s"
          % (names, scal), p.stdout + p.stderr)
    launch = json.load(open(os.path.join(d, "launch.json")))
    check(launch["launches"][0]["kernel"] == "scaled_relu" and
          launch["launches"][0]["args"] == ["y", "x", "s", "alpha", "n"], "its launch.json calls scaled_relu")
    p = kiln(["targets", "check", d], env)
    check(p.returncode == 1 and "NotImplementedError" in p.stdout, "targets check runs the unwritten reference.py",
          p.stdout)
    t["buffers"][0]["role"] = "out"
    t["buffers"][0].pop("init", None)
    t["scalars"] = [{"name": "s", "dtype": "f32", "value": 1.5}, {"name": "alpha", "dtype": "f32", "value": 0.1}]
    t.update({"family": "activation", "summary": "scaled leaky relu", "math": "y = s*x (x > 0) else s*alpha*x",
              "notes": "elementwise", "traffic_bytes": "8*n",
              "symbols": {"n": {"verify": [1, 7, 1000, 4099], "bench": [65536]}},
              "regimes": {"hyper": {"note": "other s, alpha", "scalars": {"s": 0.5, "alpha": 0.3}}}})
    json.dump(t, open(os.path.join(d, "target.json"), "w"), indent=1)
    open(os.path.join(d, "reference.py"), "w").write(RELU_REF)
    p = kiln(["targets", "check", d], env)
    check(p.returncode == 0 and "ready:" in p.stdout, "targets check passes relu (reference.py)", p.stdout + p.stderr)
    return ["myaxpy", "relu"]


def search_review_promote(name, tmp, env):
    wd = os.path.join(tmp, "wd")
    p = kiln(["run", name, "--workdir", wd, "--policy", "tune", "--iterations", "2", "--seed", "7", "--json"], env)
    s = json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else {}
    check(s.get("status") == "finished" and s.get("passed", 0) == 2 and s.get("failed") == 0,
          "kiln run %s (tune, 2 iterations): %s passed" % (name, s.get("passed")), p.stdout + p.stderr)
    p = kiln(["log", name, "--workdir", wd, "--json"], env)
    rows = json.loads(p.stdout) if p.returncode == 0 else []
    check(len(rows) >= 2, "kiln log %s lists its candidates (%d)" % (name, len(rows)), p.stdout + p.stderr)
    if rows:
        cid = str(rows[0].get("id"))
        p = kiln(["show", cid, "--workdir", wd], env)
        check(p.returncode == 0 and "__global__" in p.stdout, "kiln show %s shows the kernel" % cid, p.stderr)
    out = os.path.join(tmp, "promoted-" + name)
    p = kiln(["promote", name, "--workdir", wd, "--to", out, "--seeds", "1", "--arch", "sm_90", "--json"], env)
    files = sorted(os.listdir(out)) if os.path.isdir(out) else []
    check(p.returncode == 0 and "%s.fatbin" % name in files and "%s.h" % name in files,
          "kiln promote %s writes %s" % (name, files), p.stdout + p.stderr)


def main():
    before = git_status()
    tmp = tempfile.mkdtemp(prefix="kiln-byo-")
    tdir = os.path.join(tmp, "targets")
    os.makedirs(tdir)
    py = numpy_python()
    env = dict(os.environ, KILN_TARGETS_DIR=tdir, KILN_REF_CACHE=os.path.join(tmp, "refcache"), KILN_THREADS="2")
    if py:
        env["KILN_PYTHON"] = py
    try:
        os.chdir(tmp)
        names = make_targets(tdir, env, py)
        p = kiln(["targets", "--json"], env)
        listed = {t["name"]: t.get("dir", "") for t in json.loads(p.stdout)} if p.returncode == 0 else {}
        check("adamw" in listed and all(listed.get(n, "").startswith(tdir) for n in names),
              "kiln targets lists $KILN_TARGETS_DIR's targets next to the built-ins", p.stdout + p.stderr)
        for n in names:
            search_review_promote(n, tmp, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    check(git_status() == before, "the source tree is untouched")
    sys.exit(1 if failed() else 0)


main()
