#!/usr/bin/env python3
"""Soak: `kiln run` (policy llm, emulator) against tests/fake_llm.py with random faults
mixed into the replies — 429 with retry-after, 529, hangs, dropped streams, garbage
bodies, truncated answers, unparsable replies, compile errors, wrong kernels — for many
iterations. Reports iterations completed, peak RSS at iteration 50 and at the end, open
file descriptors at the start and the end, the work directory's size (history.db, archive,
cache), and lost candidates (LLM replies with a kernel
that the server delivered whole but that have no row in history.db; must be 0).

    python3 bench/soak.py [--iterations 500] [--kiln build/cli/kiln] [--json OUT] [--seed S]

Exit status 1 when a candidate was lost, the run did not complete its budget, or the
descriptors grew. tests/integ_soak_short.py runs it shortened in CI."""
import argparse
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kernels():
    seed = open(os.path.join(ROOT, "targets/adamw/seed.cu")).read()
    launch = open(os.path.join(ROOT, "targets/adamw/launch.json")).read()

    def own(tpb, per):
        s = seed.replace("BLOCK", "TPB").replace("ITEMS", "PER")
        s = re.sub(r"#ifndef TPB\n#define TPB \d+\n#endif", "#define TPB %d" % tpb, s)
        return re.sub(r"#ifndef PER\n#define PER \d+\n#endif", "#define PER %d" % per, s)

    def plan(per_block):
        p = json.loads(launch)
        p["launches"][0]["grid"] = ["ceil_div(n, %d)" % per_block]
        p["launches"][0]["block"] = [256]
        return json.dumps(p)

    good = [(own(256, per), plan(256 * per)) for per in (1, 2, 4, 8)]
    broken = (seed.replace("const float gi = g[i];", "const float gi = g[i]"), launch)
    wrong = (seed.replace("pi -= step_size * mi / denom;", "pi -= lr * mi / denom;"), launch)
    return good, broken, wrong


def reply_text(k, note):
    return "%s\n```cuda\n%s\n```\n```json\n%s\n```\n" % (note, k[0], k[1])


def build_script(n, rng, fat=False):
    good, broken, wrong = kernels()
    # fat: the model fills every node text to the world model's cap (4000 bytes) and each
    # reflection adds four nodes: the tree grows with the run (history.db growth test)
    pad = (lambda t: (t + " ") * (3990 // (len(t) + 1))) if fat else (lambda t: t)
    extra = (lambda: {"rationale": pad("why"), "notes": pad("notes")}) if fat else dict
    init = {"ops": [dict({"op": "insert", "parent": 0, "title": t, "description": pad(t), "difficulty": 2,
                          "score": sc}, **extra()) for t, sc in (("Multi-item per thread", 0.9), ("Grid-stride", 0.6),
                                                                 ("Vector loads", 0.5))]}
    reflect = {"ops": [dict({"op": "insert", "parent": 1, "title": "Refine %d" % k, "description": pad("more items"),
                             "difficulty": 1, "score": 0.5}, **extra()) for k in range(4 if fat else 1)],
               "reflection": "ok"}
    fenced = lambda o: "```json\n%s\n```" % json.dumps(o)
    usage = {"prompt": 3000, "completion": 800, "cached": 2000}
    replies = [{"match": "## Task: analyse the target", "times": -1, "text": fenced(init), "usage": usage},
               {"match": "## Task: reflect on action", "times": -1, "text": fenced(reflect), "usage": usage}]
    kinds = []
    for i in range(n * 2):
        r = rng.random()
        if r < 0.06:
            e, kind = {"fault": "429", "retry_after": 0}, "fault"
        elif r < 0.10:
            e, kind = {"fault": "529"}, "fault"
        elif r < 0.13:
            e, kind = {"fault": "hang", "hang_s": 4}, "fault"
        elif r < 0.16:
            e, kind = {"fault": "drop"}, "fault"
        elif r < 0.19:
            e, kind = {"fault": "garbage"}, "fault"
        elif r < 0.22:
            e, kind = {"fault": "truncated", "text": "```cuda\n__global__ void"}, "fault"
        elif r < 0.25:
            e, kind = {"text": "I think we should try harder. No code this time."}, "noparse"
        elif r < 0.30:
            e, kind = {"text": reply_text(broken, "Try this.")}, "kernel"
        elif r < 0.35:
            e, kind = {"text": reply_text(wrong, "Try this.")}, "kernel"
        else:
            e, kind = {"text": reply_text(rng.choice(good), "Try this.")}, "kernel"
        e.setdefault("usage", usage)
        replies.append(e)
        kinds.append(kind)
    default = {"text": reply_text(good[2], "Default."), "usage": usage}
    return {"replies": replies, "default": default}, kinds


def proc_stat(pid):
    rss = hwm = 0
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None
    return rss, hwm, fds


def count_candidates(db):
    if not os.path.exists(db):
        return 0
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        n = con.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
        con.close()
        return n
    except sqlite3.Error:
        return -1


def tree_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs
               if not os.path.islink(os.path.join(d, f)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--kiln", default=os.environ.get("KILN_BIN", os.path.join(ROOT, "build/cli/kiln")))
    ap.add_argument("--json", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sample-at", type=int, default=50)
    ap.add_argument("--fat-tree", action="store_true", help="node texts at their cap, 4 new nodes per reflection")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    tmp = tempfile.mkdtemp(prefix="kiln-soak-")
    script, kinds = build_script(a.iterations, rng, a.fat_tree)
    sp = os.path.join(tmp, "script.json")
    json.dump(script, open(sp, "w"))
    log = os.path.join(tmp, "requests.jsonl")
    srv = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/fake_llm.py"), "--script", sp, "--log", log],
                           stdout=subprocess.PIPE, text=True)
    port = int(srv.stdout.readline())
    wd = os.path.join(tmp, "wd")
    db = os.path.join(wd, "history.db")
    env = dict(os.environ, KILN_LLM_BACKOFF_S="0.01", KILN_LLM_BREAKER_PAUSE_S="0.2")
    t0 = time.time()
    p = subprocess.Popen([a.kiln, "run", "adamw", "--workdir", wd, "--policy", "llm",
                          "--llm", "openai-compatible:soak@http://127.0.0.1:%d/v1" % port,
                          "--iterations", str(a.iterations), "--llm-timeout", "2", "--seed", str(a.seed),
                          "--max-attempts", "5", "--json"],
                         stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "kiln.log"), "w"), text=True, env=env)
    at_sample = last = None
    samples = []  # (candidates, fds): transient pipes and sockets come and go, so compare minima
    while p.poll() is None:
        st = proc_stat(p.pid)
        n = count_candidates(db)
        if st:
            last = (n, st)
            if n >= 1:
                samples.append((n, st[2]))
            if at_sample is None and n >= a.sample_at:
                at_sample = (n, st)
        time.sleep(0.2)
    early = [f for n, f in samples if n <= max(1, a.iterations // 5)]
    late = [f for n, f in samples if n >= a.iterations * 4 // 5]
    fds_start = min(early) if early else None
    fds_end = min(late) if late else None
    out = p.stdout.read()
    srv.terminate()
    srv.wait()
    wall = time.time() - t0
    summary = json.loads(out) if out.strip().startswith("{") else {}
    # lost candidates: kernel-bearing replies delivered whole vs candidate rows with a call
    served = [json.loads(l) for l in open(log)]
    delivered = 0
    for r in served:
        e = r.get("entry")
        if e == "default":
            delivered += 1
        elif isinstance(e, int) and e >= 2 and kinds[e - 2] == "kernel":
            delivered += 1
    con = sqlite3.connect(db)
    rows = con.execute("SELECT COUNT(*) FROM candidates WHERE llm_call_id IS NOT NULL").fetchone()[0]
    total = con.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
    calls = con.execute("SELECT status, COUNT(*) FROM llm_calls GROUP BY status").fetchall()
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    con.close()
    report = {
        "iterations_budget": a.iterations, "iterations": summary.get("iterations"),
        "status": summary.get("status"), "wall_s": round(wall, 1),
        "rss_kib_at_%d" % a.sample_at: at_sample[1][0] if at_sample else None,
        "peak_rss_kib_at_%d" % a.sample_at: at_sample[1][1] if at_sample else None,
        "rss_kib_at_end": last[1][0] if last else None, "peak_rss_kib_at_end": last[1][1] if last else None,
        "fds_at_start": fds_start, "fds_at_end": fds_end,
        "requests": len(served), "llm_calls_by_status": dict(calls),
        "kernel_replies_delivered": delivered, "candidates_from_llm": rows, "candidates": total,
        "lost_candidates": max(0, delivered - rows), "integrity": integrity,
        "db_bytes": sum(tree_bytes(db + x) for x in ("", "-wal") if os.path.exists(db + x)),
        "archive_bytes": tree_bytes(os.path.join(wd, "archive")) if os.path.exists(os.path.join(wd, "archive")) else 0,
        "cache_bytes": tree_bytes(os.path.join(wd, "cache")) if os.path.exists(os.path.join(wd, "cache")) else 0,
    }
    print(json.dumps(report, indent=1))
    if a.json:
        json.dump(report, open(a.json, "w"), indent=1)
    bad = []
    if report["lost_candidates"]:
        bad.append("lost candidates")
    if summary.get("status") != "finished" or summary.get("iterations") != a.iterations:
        bad.append("the run did not complete its budget (see %s/kiln.log)" % tmp)
    # an evaluation child's pipe and the HTTP keep-alive socket come and go: a leak is
    # growth beyond those two
    if fds_start is not None and fds_end is not None and fds_end > fds_start + 2:
        bad.append("file descriptors grew")
    if integrity != "ok":
        bad.append("integrity")
    if bad:
        print("SOAK FAILED:", ", ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    main()
