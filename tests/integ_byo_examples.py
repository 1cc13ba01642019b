"""Integration: the example targets of examples/targets/ (sinkgd with a C reference,
grpo_loss with a numpy reference), used as a user would: copied out of the source tree,
then `kiln targets check`, `kiln verify` and a short `kiln run --policy tune` on the copy.
Also: a wrong kernel for each (a forgotten column pass, a symmetric clip) fails
verification, so the references are not vacuous."""
import json
import os
import shutil
import sys
import tempfile

from integ_byo_common import check, failed, kiln, numpy_python

SRC = os.environ["KILN_SOURCE_ROOT"]


# one bug each, as a user's first attempt might have it
WRONG = {
    "sinkgd": ("sinkgd_cols_update(const float *X, float *W, float lr, long long rows, long long cols)\n{",
               "sinkgd_cols_update(const float *X, float *W, float lr, long long rows, long long cols)\n{\n"
               "    if (cols > 0) { for (long long i = 0; i < rows; i++) { const long long c = (long long)blockIdx.x"
               " * BLOCK + threadIdx.x; if (c < cols) W[i * cols + c] -= lr * X[i * cols + c]; } return; }"),
    "grpo_loss": ("fmaxf(r, 1.0f - eps_lo), 1.0f + eps_hi)", "fmaxf(r, 1.0f - eps_hi), 1.0f + eps_hi)"),
}


def example(name, tdir, env):
    d = os.path.join(tdir, name)
    p = kiln(["targets", "check", d], env)
    check(p.returncode == 0 and "ok: the seed passes verification" in p.stdout,
          "%s: targets check" % name, p.stdout + p.stderr)
    p = kiln(["verify", name, "--targets-dir", tdir, "--seeds", "1", "--json"], env)
    v = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}
    check(p.returncode == 0 and v.get("pass") is True, "%s: kiln verify passes the seed" % name,
          p.stdout[-2000:] + p.stderr)
    old, new = WRONG[name]
    src = open(os.path.join(d, "seed.cu")).read()
    assert old in src, old
    wrong = os.path.join(tdir, "..", name + "_wrong.cu")
    open(wrong, "w").write(src.replace(old, new))
    p = kiln(["verify", name, "--targets-dir", tdir, "--kernel", wrong, "--launch", os.path.join(d, "launch.json"),
              "--seeds", "1"], env)
    check(p.returncode == 1 and "FAIL" in p.stdout, "%s: a wrong kernel fails verification" % name,
          p.stdout[-2000:] + p.stderr)
    wd = os.path.join(tdir, "..", "wd")
    p = kiln(["run", name, "--targets-dir", tdir, "--workdir", wd, "--policy", "tune", "--iterations", "2",
              "--seed", "3", "--json"], env)
    s = json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else {}
    check(s.get("status") == "finished" and s.get("passed") == 2, "%s: kiln run --policy tune: %s passed"
          % (name, s.get("passed")), p.stdout + p.stderr)


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-byo-ex-")
    tdir = os.path.join(tmp, "targets")
    shutil.copytree(os.path.join(SRC, "examples", "targets"), tdir)
    env = dict(os.environ, KILN_REF_CACHE=os.path.join(tmp, "refcache"), KILN_THREADS="2")
    env.pop("KILN_TARGETS_DIR", None)
    py = numpy_python()
    try:
        os.chdir(tmp)
        example("sinkgd", tdir, env)
        if py:
            example("grpo_loss", tdir, dict(env, KILN_PYTHON=py))
        else:
            print("skip grpo_loss: no python3 with numpy (apt-get install python3-numpy)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failed() else 0)


main()
