"""The main job without a GPU or an LLM key (scripts/main-job.sh, the README's first
command) on two targets with a few tuner iterations each: it ends with the result table
(target, seed time, best time, speedup, roofline, archive commit), one row per target,
whose numbers are those history.db and `kiln show` / `kiln runs` report. Then `--size`:
`kiln run` ranks on the sizes given (replace, add with '+', weights with '@'), stores them
so --resume keeps them, and refuses bad specs with one line."""
import json
import os
import re
import subprocess
import sys
import tempfile

KILN = os.environ["KILN_BIN"]
ROOT = os.environ["KILN_SOURCE_ROOT"]
ENV = {k: v for k, v in os.environ.items()
       if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "KILN_LLM")}
TARGETS = ["ratio_token", "lion"]


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def kiln(*args, rc=0, env=None):
    p = subprocess.run([KILN, *args], capture_output=True, text=True, env=env or ENV, timeout=600)
    if rc is not None and p.returncode != rc:
        fail("kiln %s exited %d (want %d)\n%s\n%s" % (" ".join(args), p.returncode, rc, p.stdout, p.stderr[-3000:]))
    return p


def main_job():
    wd = tempfile.mkdtemp(prefix="kiln-main-")
    env = dict(ENV, KILN_WORKDIR=wd, KILN_BIN=KILN, KILN_MAIN_ITERATIONS="3")
    p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "main-job.sh"), *TARGETS], capture_output=True,
                       text=True, env=env, timeout=900)
    if p.returncode != 0:
        fail("main-job.sh exited %d\n%s\n%s" % (p.returncode, p.stdout[-4000:], p.stderr[-3000:]))
    out = p.stdout
    check("== results" in out, "the main job ends with the results")
    table = out[out.index("== results"):].splitlines()
    head = table[1]
    for col in ("target", "seed (us)", "best (us)", "speedup", "roofline", "archive commit"):
        check(col in head, "table header has %r: %s" % (col, head))
    rows = {}
    for line in table[2:]:
        m = re.match(r"^(\w+)\s+([\d.]+)~\s+([\d.]+)~\s+([\d.]+)x\s+([\d.]+)\s+([0-9a-f]{12})\s+(\d+)$", line)
        if m:
            rows[m.group(1)] = m
    check(sorted(rows) == sorted(TARGETS), "one row per target: %s\n%s" % (sorted(rows), "\n".join(table)))
    check("weighted geometric mean over each target's bench sizes" in out, "the table says what a time is")
    runs = {r["target"]: r for r in json.loads(kiln("runs", "--json", "--workdir", wd).stdout)}
    for t, m in rows.items():
        r = runs[t]
        check(r["candidates"] == 3 and r["status"] == "finished", "%s: 3 candidates, finished: %s" % (t, r))
        best = json.loads(kiln("show", str(r["best_candidate"]), "--json", "--workdir", wd).stdout)
        seed = json.loads(kiln("show", str(r["seed_candidate"]), "--json", "--workdir", wd).stdout)
        seed_us, best_us, x, roof = (float(m.group(i)) for i in (2, 3, 4, 5))
        check(abs(seed_us - seed["timing"]["time_us"]) <= 0.006, "%s: seed time = kiln show's" % t)
        check(abs(best_us - best["timing"]["time_us"]) <= 0.006, "%s: best time = kiln show's" % t)
        check(abs(x - best["timing"]["speedup"]) <= 0.006 and abs(x - r["best_speedup"]) <= 0.006,
              "%s: speedup = kiln show's and kiln runs'" % t)
        check(abs(x - seed_us / best_us) <= 0.01 * x + 0.006, "%s: speedup = seed / best" % t)
        check(abs(roof - best["timing"]["roofline"]) <= 0.0006, "%s: roofline = kiln show's" % t)
        commit = m.group(6)
        msg = subprocess.run(["git", "-C", os.path.join(wd, "archive"), "log", "-1", "--format=%H%n%B", commit],
                             capture_output=True, text=True).stdout
        check(("Kiln-Candidate: %d" % r["best_candidate"]) in msg, "%s: the commit is the best's" % t)
        sizes = best["timing"]["sizes"]
        check(len(sizes) == 2 and all(z["time_us"] > 0 for z in sizes), "%s: both bench sizes timed" % t)
        g = (sizes[0]["time_us"] * sizes[1]["time_us"]) ** 0.5
        check(abs(g - best["timing"]["time_us"]) <= 1e-6 * g, "%s: the time is the sizes' geometric mean" % t)
    per = out[out.index("== results"):]
    check("B=512,T=8192:" in per and "n=268435456:" in per, "per-size times under the table")
    print("ok: main job table (%d targets) agrees with kiln show and kiln runs" % len(rows))


def sizes_flag():
    wd = tempfile.mkdtemp(prefix="kiln-size-")
    p = kiln("run", "ratio_token", "--workdir", wd, "--policy", "tune", "--iterations", "2", "--json",
             "--size", "B=64,T=4096", "--size", "+B=128,T=2048@3")
    s = json.loads(p.stdout)
    best = json.loads(kiln("show", str(s["best_candidate"]), "--json", "--workdir", wd).stdout)
    sizes = best["timing"]["sizes"]
    check([z["sizes"] for z in sizes] == [{"B": 64, "T": 4096}, {"B": 128, "T": 2048}] and
          [z["weight"] for z in sizes] == [1, 3], "--size replaced the list and added one with weight 3: %s" % sizes)
    g = (sizes[0]["time_us"] * sizes[1]["time_us"] ** 3) ** 0.25
    check(abs(g - best["timing"]["time_us"]) <= 1e-6 * g, "the time is the weighted geometric mean")
    runs = json.loads(kiln("runs", "--json", "--workdir", wd).stdout)
    check(runs[0]["best_speedup"] > 0, "the run recorded a best")
    # resume keeps the run's sizes; --size with --resume is refused
    kiln("run", "--resume", "--size", "B=1,T=1", "--workdir", wd, rc=2)
    p = kiln("run", "--resume", "--iterations", "3", "--workdir", wd, "--json")
    c3 = json.loads(kiln("log", str(s["run"]), "--json", "--workdir", wd).stdout)
    last = [c for c in c3 if c["outcome"] == "passed"][-1]
    check([z["sizes"] for z in last["sizes"]] == [{"B": 64, "T": 4096}, {"B": 128, "T": 2048}],
          "--resume times the run's own sizes: %s" % last["sizes"])
    # bad specs: one line naming the spec, exit 3 (could not run), nothing recorded
    for spec, what in (("B=64", "symbol T is missing"), ("B=64,T=4096,Q=1", "no symbol 'Q'"),
                       ("B=64,T=0", "T must be an integer"), ("B=64,T=64@-1", "weight")):
        p = kiln("run", "ratio_token", "--workdir", wd, "--iterations", "1", "--size", spec, rc=3)
        check(what in p.stderr and spec in p.stderr and p.stderr.count("\n") == 1,
              "--size %s: one line saying %r: %s" % (spec, what, p.stderr))
    check(len(json.loads(kiln("runs", "--json", "--workdir", wd).stdout)) == 1, "a bad --size records no run")
    # kiln bench takes the same flag and prints each size
    p = kiln("bench", "ratio_token", "--device", "emu", "--workdir", wd, "--size", "B=64,T=4096", "--size",
             "+B=512,T=8192@2")
    check("size      B=64 T=4096 (weight 1):" in p.stdout and "size      B=512 T=8192 (weight 2):" in p.stdout,
          "bench prints every size: " + p.stdout)
    check("how       modeled, not measured" in p.stdout, "bench says how the time was obtained")
    print("ok: --size replaces, adds, weighs, survives --resume, refuses bad specs")


if __name__ == "__main__":
    main_job()
    sizes_flag()
