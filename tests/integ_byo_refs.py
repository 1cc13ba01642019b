"""Integration: broken external references (README "Adding your own kernel"). A target made
by `kiln targets new` outside the source tree gets a reference.c or reference.py with one
fault each: a syntax error, a crash, a hang, an exit, a failure it reports itself, a
wrong output count or shape, NaN from finite inputs, nondeterminism, a missing numpy or
python. `kiln verify` must say so in one line naming the target (exit 3, never a crash of
kiln), `kiln targets check` must print it as a `fix:` line (with the compiler's log for a
C syntax error), and a search whose reference broke after an earlier run keeps that
run's history."""
import json
import os
import shutil
import sys
import tempfile

from integ_byo_common import check, failed, kiln, numpy_python


def run(args, env, timeout=300):
    return kiln(args, env, timeout)


def scaffold(tmp, name, ref, env):
    p = run(["targets", "new", name, "--dir", tmp, "--ref", ref], env)
    assert p.returncode == 0, p.stderr
    d = os.path.join(tmp, name)
    for f in os.listdir(d):
        path = os.path.join(d, f)
        text = open(path).read()
        if f == "target.json":
            t = json.loads(text)
            for k in ("family", "summary", "math", "notes"):
                t[k] = "axpy: y = a*x + y"
            t["symbols"]["n"]["verify"] = [1, 7, 100]
            text = json.dumps(t, indent=1)
        open(path, "w").write(text.replace("FILL IN", "filled in"))
    return d


C_BODY = {
    "syntax": ("int kiln_reference(kiln_ref_io *io) { return 0 }\n", "does not compile", 3),
    "crash": ("int kiln_reference(kiln_ref_io *io) { volatile double *p = 0; *p = 1; return 0; }\n",
              "crashed (signal 11", 3),
    "hang": ("int kiln_reference(kiln_ref_io *io) { for (volatile int i = 0;; i++) ; return 0; }\n",
             "did not finish within 1 s", 3),
    "exit": ("#include <stdlib.h>\nint kiln_reference(kiln_ref_io *io) { exit(0); }\n",
             "exited (status 0) before kiln_reference returned", 3),
    "fail": ("int kiln_reference(kiln_ref_io *io) { return kiln_ref_fail(io, \"no buffer %s\", \"z\"); }\n",
             "reference.c failed (returned -1): no buffer z", 3),
    "nan": ("#include <math.h>\nint kiln_reference(kiln_ref_io *io) { kiln_ref_buf(io, \"y\")[0] = NAN; return 0; }\n",
            "gave NaN for y[0] although every input is finite", 3),
    "noentry": ("int not_the_reference(kiln_ref_io *io) { return 0; }\n",
                "defines no function `int kiln_reference(kiln_ref_io *io)`", 3),
}

PY_BODY = {
    "syntax": ("def reference(inputs, scalars, sizes)\n    return {}\n", "syntax error", 3),
    "raise": ("def reference(inputs, scalars, sizes):\n    return {'y': inputs['nope']}\n",
              "reference raised KeyError: 'nope'", 3),
    "hang": ("def reference(inputs, scalars, sizes):\n    while True:\n        pass\n", "did not finish within 8 s", 3),
    "count": ("def reference(inputs, scalars, sizes):\n    return {'y': inputs['y'], 'z': inputs['x']}\n",
              "expected exactly ['y']", 3),
    "shape": ("def reference(inputs, scalars, sizes):\n    return {'y': inputs['y'][:-1]}\n", "has shape", 3),
    "nan": ("import numpy as np\ndef reference(inputs, scalars, sizes):\n    y = inputs['y'] * np.nan\n"
            "    return {'y': y}\n", "gave NaN for y[0] although every input is finite", 3),
    "exit": ("import os\ndef reference(inputs, scalars, sizes):\n    os._exit(0)\n", "ended without a result", 3),
    "badslack": ("def reference(inputs, scalars, sizes):\n    return {'y': inputs['y']}, {'y': -1.0}\n",
                 "slack of y has negative or NaN entries", 3),
}


def one_line(p):
    lines = [l for l in p.stderr.splitlines() if l.startswith("kiln verify:") and "emulator" not in l]
    return len(lines) == 1, lines[0] if lines else ""


def broken_c(tmp, env):
    d = scaffold(tmp, "brokc", "c", env)
    for case, (body, want, rc) in C_BODY.items():
        open(os.path.join(d, "reference.c"), "w").write("#include <kiln/reference.h>\n" + body)
        p = run(["verify", d, "--seeds", "1"], env)
        single, line = one_line(p)
        check(p.returncode == rc and single and want in line and "brokc" in line,
              "reference.c %s: exit %d, one line: %s" % (case, p.returncode, line[:160]), p.stdout + p.stderr)
    open(os.path.join(d, "reference.c"), "w").write("#include <kiln/reference.h>\n" + C_BODY["syntax"][0])
    p = run(["targets", "check", d], env)
    check(p.returncode == 1 and "fix: the reference" in p.stdout and "the compiler said:" in p.stdout
          and "error" in p.stdout.split("the compiler said:")[1],
          "targets check shows a C syntax error with the compiler's log", p.stdout + p.stderr)
    open(os.path.join(d, "reference.c"), "w").write(
        "#include <kiln/reference.h>\n#include <stdio.h>\n"
        "int kiln_reference(kiln_ref_io *io) {\n  FILE *f = fopen(\"/dev/urandom\", \"rb\"); unsigned char b = 0;\n"
        "  if (f) { fread(&b, 1, 1, f); fclose(f); }\n  double *y = kiln_ref_buf(io, \"y\"), *x = kiln_ref_buf(io, \"x\");\n"
        "  for (size_t i = 0; i < kiln_ref_count(io, \"y\"); i++) y[i] += kiln_ref_scalar(io, \"a\") * x[i];\n"
        "  y[0] += b * 1e-3; return 0; }\n")
    p = run(["targets", "check", d], env)
    check(p.returncode == 1 and "the reference is not deterministic: y[0]" in p.stdout,
          "targets check finds a nondeterministic reference.c", p.stdout + p.stderr)


def broken_py(tmp, env, py):
    d = scaffold(tmp, "brokpy", "py", env)
    for case, (body, want, rc) in PY_BODY.items():
        open(os.path.join(d, "reference.py"), "w").write(body)
        p = run(["verify", d, "--seeds", "1"], env)
        single, line = one_line(p)
        check(p.returncode == rc and single and want in line and "brokpy" in line,
              "reference.py %s: exit %d, one line: %s" % (case, p.returncode, line[:160]), p.stdout + p.stderr)
    open(os.path.join(d, "reference.py"), "w").write(
        "import numpy as np\ndef reference(inputs, scalars, sizes):\n"
        "    return {'y': inputs['y'] + scalars['a'] * inputs['x'] + np.random.default_rng().random()}\n")
    p = run(["targets", "check", d], env)
    check(p.returncode == 1 and "the reference is not deterministic" in p.stdout,
          "targets check finds a nondeterministic reference.py", p.stdout + p.stderr)
    open(os.path.join(d, "reference.py"), "w").write(
        "def reference(inputs, scalars, sizes):\n    return {'y': scalars['a'] * inputs['x'] + inputs['y']}\n")
    # no numpy: python without its site packages; no python at all
    nonumpy = os.path.join(tmp, "python-no-numpy")
    open(nonumpy, "w").write("#!/bin/sh\nexec %s -S \"$@\"\n" % py)
    os.chmod(nonumpy, 0o755)
    p = run(["verify", d, "--seeds", "1"], dict(env, KILN_PYTHON=nonumpy, PYTHONPATH=""))
    single, line = one_line(p)
    check(p.returncode == 3 and single and "numpy is not installed" in line and "apt-get install python3-numpy" in line,
          "no numpy: one line naming what to install: " + line[:160], p.stderr)
    p = run(["verify", d, "--seeds", "1"], dict(env, KILN_PYTHON=os.path.join(tmp, "no-such-python3")))
    single, line = one_line(p)
    check(p.returncode == 3 and single and "which is not installed" in line,
          "no python: one line naming what to install: " + line[:160], p.stderr)


def history_kept(tmp, env):
    d = scaffold(tmp, "hist", "c", env)
    wd = os.path.join(tmp, "wd")
    p = run(["run", d, "--workdir", wd, "--policy", "tune", "--iterations", "2", "--seed", "1", "--json"], env, 600)
    check(p.returncode == 0, "a search of a C-reference target outside the tree", p.stdout + p.stderr)
    open(os.path.join(d, "reference.c"), "w").write("#include <kiln/reference.h>\n" + C_BODY["crash"][0])
    p = run(["run", d, "--workdir", wd, "--policy", "tune", "--iterations", "2", "--seed", "2", "--json"], env, 600)
    s = json.loads(p.stdout) if p.returncode == 0 else {}
    check(s.get("passed") == 0 and s.get("failed", 0) >= 1 and "reference.c crashed (signal 11" in p.stderr,
          "a search whose reference crashes fails its candidates with the reason", p.stdout + p.stderr)
    p = run(["runs", "--workdir", wd, "--json"], env)
    runs = json.loads(p.stdout) if p.returncode == 0 else []
    first = [r for r in runs if r.get("id") == 1]
    check(p.returncode == 0 and len(runs) == 2 and first and (first[0].get("passed") or 0) >= 1,
          "the earlier run and its passing kernels are still in history.db", p.stdout + p.stderr)


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-byo-refs-")
    env = dict(os.environ, KILN_REF_TIMEOUT="1", KILN_REF_CACHE=os.path.join(tmp, "refcache"), KILN_THREADS="2")
    env.pop("KILN_TARGETS_DIR", None)
    try:
        os.chdir(tmp)
        broken_c(tmp, env)
        py = numpy_python()
        if py:
            broken_py(tmp, dict(env, KILN_PYTHON=py, KILN_REF_TIMEOUT="8"), py)
        else:
            print("skip reference.py cases: no python3 with numpy (apt-get install python3-numpy)")
        history_kept(tmp, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failed() else 0)


main()
