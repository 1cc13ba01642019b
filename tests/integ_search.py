"""End-to-end K-Search on the emulator against tests/fake_llm.py (a real HTTP server):
the seed baseline, initialisation (3 families and one invalid op, which must be reported
back in the next prompt), a compile error (the debug prompt quotes the log), a truncated
reply (retried), a wrong kernel (the debug prompt names the failed check), a slower
kernel, a faster kernel (a new best and an archive commit), the action closed by
reflection (an edit script, a revision), the next action, and the iteration budget.
Asserts on history.db rows, world-model revisions, archive commits and the prompts the
server received."""
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

KILN = os.environ["KILN_BIN"]
SRC = os.environ["KILN_SOURCE_ROOT"]
SEED = open(os.path.join(SRC, "targets/adamw/seed.cu")).read()
SEED_LAUNCH = open(os.path.join(SRC, "targets/adamw/launch.json")).read()


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def reply(kernel, launch, note="Here is the kernel."):
    return "%s\n\n```cuda\n%s\n```\n\n```json\n%s\n```\n" % (note, kernel, launch)


def own_macros(src, tpb, per):
    """The seed with its own launch constants (TPB threads, PER items), ignoring knobs."""
    s = src.replace("BLOCK", "TPB").replace("ITEMS", "PER")
    s = re.sub(r"#ifndef TPB\n#define TPB \d+\n#endif", "#define TPB %d" % tpb, s)
    s = re.sub(r"#ifndef PER\n#define PER \d+\n#endif", "#define PER %d" % per, s)
    return s


def plan(per_block, grid=None):
    return json.dumps({"launches": [{"kernel": "adamw_step", "grid": [grid or "ceil_div(n, %d)" % per_block],
                                     "block": [256], "shared_bytes": "0",
                                     "args": ["p", "g", "m", "v", "lr", "beta1", "beta2", "eps",
                                              "weight_decay", "step", "n"]}],
                       "scratch": [], "nvrtc_flags": []})


BROKEN = SEED.replace("const float gi = g[i];", "const float gi = g[i]")  # compile error
WRONG = SEED.replace("pi -= step_size * mi / denom;", "pi -= lr * mi / denom;")  # no bias correction
BODY = SEED[SEED.index("const float gi"):SEED.index("v[i] = vi;") + len("v[i] = vi;")]
# correct but slow: a grid-stride loop over only 4 blocks leaves most SMs idle
SLOW = """extern "C" __global__ void adamw_step(float *p, const float *g, float *m, float *v, float lr,
    float beta1, float beta2, float eps, float weight_decay, int step, long long n)
{
    const float bc1 = 1.0f - powf(beta1, (float)step);
    const float sqrt_bc2 = sqrtf(1.0f - powf(beta2, (float)step));
    const float step_size = lr / bc1;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        %s
    }
}
""" % BODY
FAST = own_macros(SEED, 256, 4)

INIT = {"ops": [
    {"op": "insert", "parent": 0, "title": "Vectorized multi-item", "description": "each thread handles 4 elements",
     "rationale": "more bytes in flight per thread", "difficulty": 2, "score": 0.9, "expected_speedup": 1.3},
    {"op": "insert", "parent": 0, "title": "Grid-stride persistent", "description": "sm_count-sized grid",
     "rationale": "fewer blocks", "difficulty": 2, "score": 0.5},
    {"op": "insert", "parent": 0, "title": "Warp-specialized", "description": "producer/consumer warps",
     "rationale": "latency hiding", "difficulty": 4, "score": 0.3},
    {"op": "delete", "id": 99}]}
REFLECT = {"ops": [{"op": "update", "id": 1, "notes": "4 items per thread reached 95% of the roofline"},
                   {"op": "insert", "parent": 1, "title": "Eight items per thread", "description": "PER=8",
                    "rationale": "even more in flight", "difficulty": 1, "score": 0.2}],
           "reflection": "vectorizing worked"}


def script():
    fenced = lambda o: "```json\n%s\n```" % json.dumps(o)
    return {"replies": [
        {"match": "## Task: analyse the target", "text": "Analysis...\n" + fenced(INIT),
         "usage": {"prompt": 1200, "completion": 300}},
        {"match": "## Task: implement action 1", "text": reply(BROKEN, SEED_LAUNCH),
         "usage": {"prompt": 1500, "completion": 600, "cached": 1000}},
        {"match": "## Task: fix your last attempt", "fault": "truncated", "text": "```cuda\n__global__ void"},
        {"match": "## Task: fix your last attempt", "text": reply(WRONG, SEED_LAUNCH)},
        {"match": "## Task: fix your last attempt", "text": reply(SLOW, plan(256, "4"))},
        {"match": "## Task: make action 1 faster", "text": reply(FAST, plan(1024))},
        {"match": "## Task: reflect on action 1", "text": fenced(REFLECT)},
    ], "default": {"text": reply(FAST, plan(1024), "Same again."), "usage": {"prompt": 900, "completion": 200}}}


def start_server(tmp, init_forever=False, sc=None):
    path = os.path.join(tmp, "script.json")
    sc = sc or script()
    if init_forever:
        sc["replies"][0]["times"] = -1
    json.dump(sc, open(path, "w"))
    log = os.path.join(tmp, "requests.jsonl")
    srv = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/fake_llm.py"), "--script", path,
                            "--log", log], stdout=subprocess.PIPE, text=True)
    port = int(srv.stdout.readline().strip())
    return srv, log, port


def prompts(log):
    out = []
    for line in open(log):
        r = json.loads(line)
        b = r["body"]
        text = json.dumps(b) if not isinstance(b, str) else b
        out.append(text)
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-search-")
    srv, log, port = start_server(tmp)
    wd = os.path.join(tmp, "wd")
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    env.pop("ANTHROPIC_API_KEY", None)
    env["KILN_LLM_BACKOFF_S"] = "0.01"
    try:
        p = subprocess.run([KILN, "run", "adamw", "--workdir", wd, "--policy", "llm",
                            "--llm", "openai-compatible:fake-coder@http://127.0.0.1:%d/v1" % port,
                            "--iterations", "6", "--max-attempts", "4", "--seed", "11", "--json"],
                           capture_output=True, text=True, env=env, timeout=600)
    finally:
        srv.terminate()
        srv.wait()
    if p.returncode != 0:
        fail("kiln run exited %d\n%s\n%s" % (p.returncode, p.stdout, p.stderr[-4000:]))
    s = json.loads(p.stdout)
    if s["status"] != "finished" or s["iterations"] != 6 or s["policy"] != "llm":
        fail("summary %r\n%s" % (s, p.stderr[-3000:]))
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    rows = con.execute("SELECT c.id, c.iteration, c.outcome, c.node_id, c.llm_call_id, v.failed_check "
                       "FROM candidates c LEFT JOIN verifications v ON v.candidate_id = c.id "
                       "ORDER BY c.iteration").fetchall()
    outcomes = [r[2] for r in rows]
    want = ["passed", "compile_error", "failed", "passed", "passed", "passed"]
    if outcomes != want:
        fail("outcomes %r, want %r\n%s" % (rows, want, p.stderr[-3000:]))
    if rows[2][5] != "values":
        fail("the wrong kernel failed %r, want 'values'" % (rows[2][5],))
    if any(r[4] is None for r in rows[1:]):
        fail("an LLM candidate has no llm_call_id: %r" % rows)
    best = con.execute("SELECT best_candidate, seed_candidate FROM runs").fetchone()
    if best[0] != rows[4][0] or best[1] != rows[0][0]:
        fail("best/seed %r, want %d/%d" % (best, rows[4][0], rows[0][0]))
    times = dict(con.execute("SELECT candidate_id, time_us FROM timings").fetchall())
    if not times[rows[3][0]] > times[rows[0][0]] > times[rows[4][0]]:
        fail("expected slow > seed > fast, got %r" % times)
    calls = con.execute("SELECT purpose, status, prompt_tokens, cached_tokens FROM llm_calls ORDER BY id").fetchall()
    purposes = [c[0] for c in calls]
    if purposes[:7] != ["init", "implement", "debug", "debug", "debug", "improve", "reflect"]:
        fail("llm call purposes %r" % calls)
    if calls[2][1] != "truncated":
        fail("the truncated reply is recorded as %r" % (calls[2],))
    if calls[1][3] != 1000:
        fail("cached tokens not recorded: %r" % (calls[1],))
    revs = con.execute("SELECT edits, rejected, llm_call_id FROM wm_revisions ORDER BY id").fetchall()
    rejected = [json.loads(r[1]) for r in revs if json.loads(r[1])]
    if not rejected or "99" not in json.dumps(rejected[0]):
        fail("the invalid op was not recorded as rejected: %r" % revs)
    tree = json.loads(con.execute("SELECT tree FROM wm_revisions ORDER BY id DESC LIMIT 1").fetchone()[0])
    tj = json.dumps(tree)
    for title in ("Vectorized multi-item", "Grid-stride persistent", "Warp-specialized", "Eight items per thread"):
        if title not in tj:
            fail("final tree lacks %r" % title)
    # the tree built from the first reply keeps the seed's evaluation: the root's attempt and
    # best, and every node's speedup over the seed's time
    nodes = {n["id"]: n for n in tree["nodes"]}
    root = nodes[0]
    if root["attempts"] < 1 or root["best_candidate"] != rows[0][0] or root["best_us"] != times[rows[0][0]]:
        fail("the root lost the seed's evaluation after init: %r" % root)
    for n in tree["nodes"]:
        want = root["best_us"] / n["best_us"] if n.get("best_us", 0) > 0 else 0
        if abs(n.get("best_speedup", 0) - want) > 1e-9 * max(1, want):
            fail("node #%d speedup %r, want %r" % (n["id"], n.get("best_speedup"), want))
    if not nodes[1].get("best_speedup", 0) > 1:
        fail("action 1's best speedup over the seed is %r" % nodes[1].get("best_speedup"))
    # the best candidate's iteration is one number in history.db, the progress line (run.log),
    # result.json, the commit, kiln show and kiln log
    best_id, best_it = rows[4][0], rows[4][1]
    newbest = [l for l in p.stderr.splitlines() if "NEW BEST" in l]
    if not newbest or not newbest[-1].startswith("[%d] " % best_it):
        fail("the progress line of the new best is not at iteration %d: %r" % (best_it, newbest))
    arch = os.path.join(wd, "archive")
    res = json.loads(subprocess.run(["git", "-C", arch, "show", "adamw/sm_90:result.json"], capture_output=True,
                                    text=True).stdout)
    body = subprocess.run(["git", "-C", arch, "log", "-1", "--format=%b", "adamw/sm_90"], capture_output=True,
                          text=True).stdout
    if res["iteration"] != best_it or ("iteration %d," % best_it) not in body:
        fail("result.json iteration %r / commit %r, want %d" % (res["iteration"], body, best_it))
    show = subprocess.run([KILN, "show", str(best_id), "--workdir", wd], capture_output=True, text=True).stdout
    if ("iteration %d," % best_it) not in show:
        fail("kiln show does not give iteration %d: %s" % (best_it, show[:400]))
    lg = subprocess.run([KILN, "log", "adamw", "--workdir", wd], capture_output=True, text=True).stdout
    line = [l for l in lg.splitlines() if re.match(r"\s*%d\*" % best_id, l)]
    if not line or int(line[0].split()[3]) != best_it:
        fail("kiln log's best row %r, want iteration %d" % (line, best_it))
    # a long model name (here the whole provider spec) does not push kiln runs' columns out of line
    started = con.execute("SELECT started FROM runs").fetchone()[0]
    rl = subprocess.run([KILN, "runs", "--workdir", wd], capture_output=True, text=True).stdout.splitlines()
    head = [l for l in rl if l.lstrip().startswith("RUN")]
    row = [l for l in rl if started in l]
    if not head or not row or row[0].index(started) != head[0].index("STARTED"):
        fail("kiln runs' columns are out of line:\n%s" % "\n".join(rl))
    con.close()
    pr = prompts(log)
    # the reflection prompt gives the action's real speedup over the seed
    refl = [t for t in pr if "## Task: reflect on action 1" in t]
    m = re.search(r"([0-9.]+)x over the seed", refl[0] if refl else "")
    if not m or abs(float(m.group(1)) - nodes[1]["best_speedup"]) > 0.01:
        fail("the reflection prompt's speedup %r, want %.2f" % (m and m.group(0), nodes[1]["best_speedup"]))
    if "<- chosen" in refl[0]:
        fail("the reflection prompt marks the solved action as chosen")
    # every prompt: the seed's knob values and the ABI's fine print in the prefix, and the
    # search state (iteration, budget, stagnation rule, tie band, new-node limit)
    for i, text in enumerate(pr):
        for want in ("at the seed's values, BLOCK=256 ITEMS=1,", "NOT zeroed", "i64 -> long long*",
                     "## Search state", "of the 6-iteration budget left", "closes after 3 attempts in a row",
                     "or after 4 attempts", "faster by more than 1%", "at most 4 new nodes"):
            if want not in text:
                fail("prompt %d lacks %r" % (i, want))
    if "Iteration 1 " not in pr[0] or "6 of the 6-iteration budget" in pr[0]:
        fail("the init prompt's search state does not count the seed: %s" % pr[0][-1500:])
    if len(pr) != len(calls):
        fail("%d requests reached the server but %d llm_calls rows" % (len(pr), len(calls)))
    if "rejected operations" not in pr[1] or "#99" not in pr[1] and "99" not in pr[1]:
        fail("the prompt after init does not report the rejected op: %s" % pr[1][:3000])
    if "compile error" not in pr[2] and "error" not in pr[2]:
        fail("the debug prompt does not quote the compile error")
    if "values" not in pr[4]:
        fail("the debug prompt after the wrong kernel does not name the failed check")
    if "modeled" not in pr[5] or "counters" not in pr[5]:
        fail("the improve prompt lacks timing and counters")
    if "(modeled on the emulator's cost model, sum of kernel times" not in pr[5]:
        fail("the improve prompt does not say what the time is: %s" % pr[5][:3000])
    if "-bound" not in pr[5] or "occupancy" not in pr[5]:
        fail("the improve prompt lacks the cost model's per-launch breakdown")
    # per bench size: the time, roofline, bound and launches; how the time was obtained
    for want in ("size n=16777216 (weight 1): ", "size n=268435456 (weight 1): ", ", bound by ",
                 "the weighted geometric mean over the bench sizes below",
                 "how the time was obtained: modeled, not measured: the emulator ran the plan at the verification "
                 "sizes n=65539 and n=1000 for counters; they are extrapolated linearly in traffic to the bench "
                 "sizes n=16777216 and n=268435456"):
        if want not in pr[5]:
            fail("the improve prompt lacks %r: %s" % (want, pr[5][-4000:]))
    if pr[5].count("  launch 0: ") != 2:
        fail("the improve prompt does not give each bench size its launch breakdown")
    for i, text in enumerate(pr):
        if "benchmarked at" in text or ("Bench sizes: every candidate is timed at each of these 2 sizes: "
                                        "n=16777216 (weight 1); n=268435456 (weight 1)") not in text:
            fail("prompt %d does not list the bench sizes as whole sizes" % i)
    # a new family (an action under the root, started from the seed) also sees the run's best
    for text in pr[7:]:
        for a in (2, 3):
            if ("## Task: implement action %d" % a) in text and "current best" not in text:
                fail("the prompt of new family %d does not show the run's current best" % a)
    if not any("current best" in t for t in pr[7:]):
        fail("no later prompt shows the run's current best: %s" % [t[-300:] for t in pr[7:]])
    # the stable prefix comes first and is byte-identical across calls (prefix caching)
    first = [json.loads(l)["body"]["messages"] for l in open(log)]
    texts = [m[0]["content"] if isinstance(m[0]["content"], str) else json.dumps(m[0]["content"]) for m in first]
    common = os.path.commonprefix(texts)
    if "## Seed kernel" not in common or "## Task" in common:
        fail("the calls do not share the stable prefix (target, rules, seed) before the variable part")
    commits = subprocess.run(["git", "-C", arch, "log", "--all", "--format=%s"], capture_output=True,
                             text=True).stdout.strip().split("\n")
    if len(commits) != 2 or "candidate %d" % rows[4][0] not in commits[0]:
        fail("archive commits %r" % commits)
    kernel = subprocess.run(["git", "-C", arch, "show", "adamw/sm_90:kernel.cu"], capture_output=True,
                            text=True).stdout
    if "#define PER 4" not in kernel:
        fail("the archive tip is not the fast kernel")
    print("ok: %d candidates, %d llm calls, speedup %.2fx, %d revisions" % (len(rows), len(calls),
                                                                          s["speedup"], len(revs)))


def resume_and_token_budget():
    """An llm run stopped by its iteration budget resumes with a larger one without a second
    initialisation (the tree comes back from history.db), and a token budget stops a run."""
    tmp = tempfile.mkdtemp(prefix="kiln-search2-")
    srv, log, port = start_server(tmp, init_forever=True)
    wd = os.path.join(tmp, "wd")
    env = dict(os.environ)
    env["KILN_LLM_BACKOFF_S"] = "0.01"
    llm = "openai-compatible:fake-coder@http://127.0.0.1:%d/v1" % port
    try:
        first = subprocess.run([KILN, "run", "adamw", "--workdir", wd, "--policy", "llm", "--llm", llm,
                                "--iterations", "3", "--seed", "4", "--json"], capture_output=True, text=True,
                               env=env, timeout=600)
        again = subprocess.run([KILN, "run", "--resume", "--workdir", wd, "--iterations", "5", "--json"],
                               capture_output=True, text=True, env=env, timeout=600)
        wd2 = os.path.join(tmp, "wd2")
        tok = subprocess.run([KILN, "run", "adamw", "--workdir", wd2, "--policy", "llm", "--llm", llm,
                              "--max-tokens", "2000", "--json"], capture_output=True, text=True, env=env,
                             timeout=600)
    finally:
        srv.terminate()
        srv.wait()
    for name, p in (("first", first), ("resume", again), ("tokens", tok)):
        if p.returncode != 0:
            fail("%s run exited %d\n%s" % (name, p.returncode, p.stderr[-3000:]))
    a, b, t = json.loads(first.stdout), json.loads(again.stdout), json.loads(tok.stdout)
    if a["iterations"] != 3 or b["iterations"] != 5 or a["run"] != b["run"]:
        fail("resume: %r then %r" % (a, b))
    inits = sum(1 for l in open(log) if "## Task: analyse the target" in l)
    if inits != 2:  # one for the resumed run, one for the token-budget run
        fail("%d initialisation calls, want 2 (resume must not re-initialise)" % inits)
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    iters = [r[0] for r in con.execute("SELECT iteration FROM candidates ORDER BY iteration")]
    con.close()
    if iters != list(range(5)):
        fail("iterations after resume: %r" % iters)
    if t["tokens"] < 2000 or t["iterations"] > 3:
        fail("token budget: %r" % t)
    print("ok: resumed llm run 3 -> 5 iterations without re-initialising; token budget stopped at %d tokens" % t["tokens"])


def fatal_api_error():
    """A 401 is not retried: the run stops as failed with one clear line, the seed kept."""
    tmp = tempfile.mkdtemp(prefix="kiln-search3-")
    path = os.path.join(tmp, "script.json")
    json.dump({"replies": [], "default": {"status": 401, "body": {"error": {"message": "Incorrect API key provided",
                                                                           "type": "invalid_request_error",
                                                                           "code": "invalid_api_key"}}}},
              open(path, "w"))
    log = os.path.join(tmp, "requests.jsonl")
    srv = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/fake_llm.py"), "--script", path, "--log", log],
                           stdout=subprocess.PIPE, text=True)
    port = int(srv.stdout.readline())
    wd = os.path.join(tmp, "wd")
    try:
        p = subprocess.run([KILN, "run", "adamw", "--workdir", wd, "--policy", "llm", "--llm",
                            "openai-compatible:fake@http://127.0.0.1:%d/v1" % port, "--iterations", "5"],
                           capture_output=True, text=True, timeout=300)
    finally:
        srv.terminate()
        srv.wait()
    requests = sum(1 for _ in open(log))
    if p.returncode != 3 or "Incorrect API key" not in p.stderr or requests != 1:
        fail("401: exit %d, %d requests, stderr %r" % (p.returncode, requests, p.stderr[-1000:]))
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    status, seed = con.execute("SELECT status, seed_candidate FROM runs").fetchone()
    con.close()
    if status != "failed" or not seed:
        fail("after a 401 the run is %s with seed %r" % (status, seed))
    print("ok: a 401 stops the run after one request, status failed, the seed kept")


def edit_replies():
    """Edit replies end to end (fake_llm's edits/diff mode): a search/replace block that does
    not apply is refused and the retry repeats the task, the parent kernel and the exact
    reason; the repaired edit and an improve answered with a unified diff are applied to the
    kernels their prompts quoted, evaluated and recorded with what each changed (the model's
    CHANGED line, else kiln's diff summary); the improve prompts carry the action's earlier
    attempts; the winner is described by its own change, the action's title shown as the
    action (a model may change method inside an action), in show, log, the report,
    result.json and the commit."""
    tmp = tempfile.mkdtemp(prefix="kiln-search-edit-")
    base_line = "    const long long base = (long long)blockIdx.x * (BLOCK * ITEMS) + threadIdx.x;\n"
    loop_line = "    for (int k = 0; k < ITEMS; k++) {\n"
    four = [[base_line, base_line.replace("ITEMS", "4")], [loop_line, loop_line.replace("ITEMS", "4")]]
    plan4 = json.loads(SEED_LAUNCH)
    plan4["launches"][0]["grid"] = ["ceil_div(n, BLOCK*4)"]
    plan8 = json.loads(SEED_LAUNCH)
    plan8["launches"][0]["grid"] = ["ceil_div(n, BLOCK*8)"]
    diff8 = ("--- a/kernel.cu\n+++ b/kernel.cu\n@@ -17,5 +17,5 @@\n"
             "     const float step_size = lr / bc1;\n"
             "-" + base_line.replace("ITEMS", "4") + "+" + base_line.replace("ITEMS", "8") +
             " #pragma unroll\n"
             "-" + loop_line.replace("ITEMS", "4") + "+" + loop_line.replace("ITEMS", "8") +
             "         const long long i = base + (long long)k * BLOCK;\n")
    changed = "four elements per thread, scalar loads (no vectors after all)"
    fenced = lambda o: "```json\n%s\n```" % json.dumps(o)
    sc = {"replies": [
        {"match": "## Task: analyse the target", "text": fenced(INIT)},
        {"match": "## Task: implement action 1", "changed": "try",
         "edits": [["        const float gi = g[i];\n        float pi = p[i]; // x\n", "\n"]]},
        {"match": "## Task: implement action 1", "changed": changed, "edits": four, "launch": plan4},
        {"match": "## Task: make action 1 faster", "diff": diff8, "launch": plan8},
    ], "default": {"text": reply(FAST, plan(1024), "Same again.")}}
    srv, log, port = start_server(tmp, sc=sc)
    wd = os.path.join(tmp, "wd")
    env = dict(os.environ)
    env["KILN_LLM_BACKOFF_S"] = "0.01"
    try:
        p = subprocess.run([KILN, "run", "adamw", "--workdir", wd, "--policy", "llm", "--llm",
                            "openai-compatible:fake@http://127.0.0.1:%d/v1" % port, "--iterations", "4",
                            "--seed", "5", "--json"], capture_output=True, text=True, env=env, timeout=600)
    finally:
        srv.terminate()
        srv.wait()
    if p.returncode != 0:
        fail("edit run exited %d\n%s" % (p.returncode, p.stderr[-3000:]))
    pr = prompts(log)
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    calls = [r[0] for r in con.execute("SELECT purpose FROM llm_calls ORDER BY id")]
    if calls[:4] != ["init", "implement", "repair", "improve"]:
        fail("edit run's calls %r" % calls)
    # the retry after the refused edit: the task, the parent kernel and the exact reason
    rep = pr[2]
    for want in ("## Task: implement action 1", "Parent's best kernel: kernel.cu", "adamw_step(float *p",
                 "block 1: the old text is not in the parent kernel",
                 "its first 1 line(s) match at line 24, then it has"):
        if want not in rep:
            fail("the retry after a refused edit lacks %r: %s" % (want, rep[-2500:]))
    rows = con.execute("SELECT c.id, c.iteration, c.outcome, c.changed, c.source, c.launch FROM candidates c "
                       "ORDER BY c.iteration").fetchall()
    if [r[2] for r in rows] != ["passed"] * 4:
        fail("edit run outcomes %r" % [(r[1], r[2], r[3]) for r in rows])
    if rows[0][3] != "the seed (the baseline)" or rows[1][3] != changed:
        fail("what changed: %r" % [r[3] for r in rows])
    if "k < 4" not in rows[1][4] or "BLOCK*4" not in rows[1][5] or "k < 8" not in rows[2][4]:
        fail("the edits were not applied as sent")
    if not rows[2][3].startswith("+2 -2 lines in adamw_step") or "launch plan changed" not in rows[2][3]:
        fail("kiln's diff summary for the diff reply: %r" % rows[2][3])
    # the improve prompts carry the action's earlier attempts, one row each with what changed
    imp = [t for t in pr if "## Task: make action 1 faster" in t]
    if len(imp) < 2 or "### This action's earlier attempts" not in imp[0] or ("1 | passed | " not in imp[0]) \
            or changed not in imp[0] or "2 | passed | " not in imp[1] or "+2 -2 lines in adamw_step" not in imp[1]:
        fail("the improve prompts' attempts tables: %r" % [t[t.find("earlier attempts"):][:600] for t in imp])
    if "Its launch plan (kept with edits" not in imp[0] or "BLOCK*4" not in imp[0]:
        fail("the improve prompt does not quote the last launch plan")
    # the winner is described by its own change, the action's title as the action
    best = con.execute("SELECT best_candidate FROM runs").fetchone()[0]
    bchanged = con.execute("SELECT changed FROM candidates WHERE id = ?", (best,)).fetchone()[0]
    con.close()
    if best not in (rows[1][0], rows[2][0]):
        fail("the winner %r is not an edited kernel" % best)
    show = subprocess.run([KILN, "show", str(best), "--workdir", wd], capture_output=True, text=True).stdout
    if ("what changed: %s" % bchanged) not in show or "action (world-model node): #0" not in show \
            or "Vectorized multi-item" not in show:
        fail("kiln show's winner: %s" % show[:600])
    sj = json.loads(subprocess.run([KILN, "show", str(best), "--json", "--workdir", wd], capture_output=True,
                                   text=True).stdout)
    if sj["candidate"]["changed"] != bchanged:
        fail("kiln show --json changed %r" % sj["candidate"].get("changed"))
    lg = subprocess.run([KILN, "log", "adamw", "--workdir", wd], capture_output=True, text=True).stdout
    if "WHAT CHANGED" not in lg or not any(l.lstrip().startswith(str(best)) and bchanged[:40] in l
                                           for l in lg.splitlines()):
        fail("kiln log lacks the winner's change:\n%s" % lg)
    html = os.path.join(tmp, "r.html")
    subprocess.run([KILN, "report", "adamw", "-o", html, "--workdir", wd], capture_output=True, text=True)
    page = open(html).read()
    esc = bchanged.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if ("What it changed: %s" % esc) not in page or "Found while working on action #1 Vectorized multi-item" not in page:
        fail("the report's winner section lacks its change / action")
    arch = os.path.join(wd, "archive")
    res = json.loads(subprocess.run(["git", "-C", arch, "show", "adamw/sm_90:result.json"], capture_output=True,
                                    text=True).stdout)
    body = subprocess.run(["git", "-C", arch, "log", "-1", "--format=%b", "adamw/sm_90"], capture_output=True,
                          text=True).stdout
    if res.get("changed") != bchanged or ("changed: %s" % bchanged) not in body or "action: " not in body:
        fail("result.json / commit of the winner: %r / %r" % (res.get("changed"), body))
    print("ok: edit replies applied (a refused one retried with its reason), what changed recorded and shown")


if __name__ == "__main__":
    edit_replies()
    main()
    resume_and_token_budget()
    fatal_api_error()
