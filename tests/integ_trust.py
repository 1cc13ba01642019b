"""Integration: what verification does for a search (README "Verification: input sets").
(1) `kiln run lion` driven by tests/fake_llm.py whose every kernel is the capped-grid Lion
(grid min(ceil_div(n, 256), 16 x sm_count), no grid-stride loop): every such candidate fails
at the cap-breaking size with a message naming the size and the cause, and the run never
records one as its best. (2) The final winner's bench-size check: `kiln run lion_bench`
(a fixture target whose bench size is 300000, so it is cheap) verifies its best at that
size on the emulator and says so in the summary. (3) `kiln promote` verifies at the bench
size too and the manifest records it; KILN_BENCH_CHECK=0 skips it and the manifest says so."""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

KILN = os.environ["KILN_BIN"]
SRC = os.environ["KILN_SOURCE_ROOT"]
FX = os.path.join(SRC, "tests/fixtures/verify")
CAPPED = open(os.path.join(FX, "lion_capped_grid.cu")).read()
CAPPED_PLAN = open(os.path.join(FX, "lion_capped_grid.json")).read()


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def fenced(o):
    return "```json\n%s\n```" % json.dumps(o)


def reply():
    return "A persistent grid of 16 blocks per SM.\n\n```cuda\n%s\n```\n\n```json\n%s\n```\n" % (CAPPED, CAPPED_PLAN)


INIT = {"ops": [{"op": "insert", "parent": 0, "title": "Persistent grid", "description": "16 blocks per SM",
                 "rationale": "fewer blocks", "difficulty": 1, "score": 0.9},
                {"op": "insert", "parent": 0, "title": "Vectorized", "description": "float4 loads",
                 "rationale": "bytes in flight", "difficulty": 2, "score": 0.5},
                {"op": "insert", "parent": 0, "title": "Fewer registers", "description": "launch bounds",
                 "rationale": "occupancy", "difficulty": 2, "score": 0.3}]}


def capped_run(tmp, env):
    script = os.path.join(tmp, "script.json")
    json.dump({"replies": [{"match": "## Task: analyse the target", "text": "Analysis\n" + fenced(INIT)}],
               "default": {"text": reply()}}, open(script, "w"))
    log = os.path.join(tmp, "requests.jsonl")
    srv = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/fake_llm.py"), "--script", script,
                            "--log", log], stdout=subprocess.PIPE, text=True)
    port = int(srv.stdout.readline().strip())
    wd = os.path.join(tmp, "wd")
    try:
        p = subprocess.run([KILN, "run", "lion", "--workdir", wd, "--policy", "llm",
                            "--llm", "openai-compatible:fake-coder@http://127.0.0.1:%d/v1" % port,
                            "--iterations", "4", "--max-attempts", "3", "--seed", "5", "--json"],
                           capture_output=True, text=True, env=env, timeout=600)
    finally:
        srv.terminate()
        srv.wait()
    if p.returncode != 0:
        fail("kiln run lion exited %d\n%s\n%s" % (p.returncode, p.stdout, p.stderr[-4000:]))
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    rows = con.execute("SELECT c.id, c.outcome, c.source, v.failed_check, v.message FROM candidates c "
                       "LEFT JOIN verifications v ON v.candidate_id = c.id ORDER BY c.iteration").fetchall()
    best = con.execute("SELECT best_candidate, seed_candidate FROM runs").fetchone()
    con.close()
    capped = [r for r in rows if "16 x sm_count" in (r[2] or "")]
    if len(capped) < 2:
        fail("the capped kernel was evaluated %d times, want >= 2: %r" % (len(capped), [r[:2] for r in rows]))
    for r in capped:
        if r[1] != "failed" or r[3] != "values":
            fail("capped candidate %d: outcome %s check %s, want failed/values" % (r[0], r[1], r[3]))
        if "cap-breaking size n=" not in (r[4] or "") or "grid-stride" not in r[4] or "sm_count = 4" not in r[4]:
            fail("capped candidate %d: the message does not name the size and the cause: %s" % (r[0], r[4]))
    if best[0] in [r[0] for r in capped] or best[0] != best[1]:
        fail("the run's best is %r (seed %r): a capped kernel must never be the best" % best)
    print("ok   capped-grid Lion failed %d times at the cap-breaking size; the best stayed the seed" % len(capped))


def bench_checks(tmp, env):
    wd = os.path.join(tmp, "wd2")
    env = dict(env, KILN_BENCH_CHECK="1")
    tdir = os.path.join(FX, "targets")
    p = subprocess.run([KILN, "run", "lion_bench", "--targets-dir", tdir, "--workdir", wd, "--policy", "tune",
                        "--iterations", "2", "--seed", "3", "--json"], capture_output=True, text=True, env=env,
                       timeout=600)
    if p.returncode != 0:
        fail("kiln run lion_bench exited %d\n%s\n%s" % (p.returncode, p.stdout, p.stderr[-3000:]))
    s = json.loads(p.stdout)
    if not (s.get("bench_check") or "").startswith("passed at n=300000"):
        fail("run summary bench_check %r" % s.get("bench_check"))
    if "at the bench size n=300000 on the emulator" not in p.stderr:
        fail("no progress line for the bench-size check:\n%s" % p.stderr[-2000:])
    print("ok   run: %s" % s["bench_check"])
    out = os.path.join(tmp, "out")
    p = subprocess.run([KILN, "promote", "lion_bench", "--targets-dir", tdir, "--workdir", wd, "--to", out,
                        "--seeds", "1", "--json"], capture_output=True, text=True, env=env, timeout=600)
    if p.returncode != 0:
        fail("promote exited %d\n%s" % (p.returncode, p.stderr[-3000:]))
    ver = json.loads(p.stdout)["verification"]
    bs = ver.get("bench_size")
    if not isinstance(bs, dict) or not bs.get("pass") or bs["input_set"]["sizes"] != {"n": 300000} \
            or bs["input_set"]["kind"] != "bench":
        fail("promote manifest bench_size %r" % (bs,))
    print("ok   promote verified at the bench size %r" % bs["input_set"]["sizes"])
    env["KILN_BENCH_CHECK"] = "0"
    p = subprocess.run([KILN, "promote", "lion_bench", "--targets-dir", tdir, "--workdir", wd, "--to", out + "2",
                        "--seeds", "1", "--json"], capture_output=True, text=True, env=env, timeout=600)
    if p.returncode != 0 or "skipped" not in str(json.loads(p.stdout)["verification"].get("bench_size")):
        fail("promote with KILN_BENCH_CHECK=0: exit %d, %s" % (p.returncode, p.stdout[-1500:]))
    print("ok   promote with KILN_BENCH_CHECK=0 says the bench-size check was skipped")


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-trust-")
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    env.pop("ANTHROPIC_API_KEY", None)
    env["KILN_LLM_BACKOFF_S"] = "0.01"
    capped_run(tmp, env)
    bench_checks(tmp, env)
    print("PASS")


if __name__ == "__main__":
    main()
