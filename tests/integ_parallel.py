"""`kiln run --parallel N` against tests/fake_llm.py answering after a fixed delay (a model
that thinks), on a small copy of adamw on the emulator:
(1) --parallel 4 completes 12 iterations in at most 40% of the wall time of --parallel 1,
    with the same number of rows, iterations 0..11 each once, distinct actions in flight,
    PRAGMA integrity_check ok and the archive tip at the best;
(2) SIGKILL during a --parallel 4 run at KILN_PARALLEL_KILLS (default 5) random points, each
    followed by --resume: nothing recorded is lost or recorded twice, and the run completes
    its budget with every iteration exactly once, and the candidates in flight at a kill are
    evaluated again without a new LLM call;
(3) `kiln run tiny tiny2` (the tuner, 2 configurations in flight): a run, an equal budget
    share and an archive branch per target, and the side-by-side table."""
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from integ_par_common import fail, finished, make_target, script, start_server  # noqa: E402

KILN = os.environ["KILN_BIN"]
DELAY = float(os.environ.get("KILN_PARALLEL_DELAY", "3"))
KILLS = int(os.environ.get("KILN_PARALLEL_KILLS", "5"))
BUDGET = 12
KILL_BUDGET = 3 * BUDGET  # the kill run: long enough that every kill lands before it ends


def db_check(db):
    con = sqlite3.connect(db)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            fail("integrity_check: %s" % ok)
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'candidates'").fetchone():
            return []
        dup = con.execute("SELECT run_id, iteration, COUNT(*) FROM candidates GROUP BY run_id, iteration "
                          "HAVING COUNT(*) > 1").fetchall()
        if dup:
            fail("iterations recorded twice: %r" % dup)
        return con.execute("SELECT id, iteration, node_id FROM candidates ORDER BY id").fetchall()
    finally:
        con.close()


def in_flight(db):
    """The LLM calls of candidates the checkpoint lists as sent to evaluation."""
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT state FROM checkpoints").fetchone()
    except sqlite3.OperationalError:  # the schema is not written yet, or a writer holds it
        row = None
    con.close()
    pol = (json.loads(row[0]).get("policy") or {}) if row else {}
    return {s["in_flight"]["llm_call"] for s in pol.get("slots", []) if "in_flight" in s}


def final_check(wd, what, budget=BUDGET):
    rows = db_check(os.path.join(wd, "history.db"))
    its = sorted(r[1] for r in rows)
    if its != list(range(budget)):
        fail("%s: iterations are not 0..%d exactly once: %r" % (what, budget - 1, its))
    finished(wd, what)
    return rows


def run(args, port, tdir, wd, budget=BUDGET, **kw):
    cmd = [KILN, "run", "--workdir", wd] + args
    if "--resume" not in args:
        cmd += ["tiny", "--targets-dir", tdir, "--policy", "llm", "--llm", "openai-compatible:fake",
                "--base-url", "http://127.0.0.1:%d/v1" % port, "--iterations", str(budget), "--seed", "5",
                "--seeds", "1", "--stagnation", "20", "--max-attempts", "20"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def timed(width, port, tdir, tmp):
    wd = os.path.join(tmp, "wd%d" % width)
    t0 = time.time()
    p = run(["--parallel", str(width)], port, tdir, wd)
    out, err = p.communicate(timeout=300)
    wall = time.time() - t0
    if p.returncode != 0:
        fail("--parallel %d exited %d\n%s\n%s" % (width, p.returncode, out, err[-3000:]))
    rows = final_check(wd, "--parallel %d" % width)
    print("ok   --parallel %d: %d rows in %.1f s" % (width, len(rows), wall))
    return wall, rows, err


def speedup(port, tdir, tmp):
    w1, rows1, _ = timed(1, port, tdir, tmp)
    w4, rows4, err4 = timed(4, port, tdir, tmp)
    if len(rows1) != len(rows4):
        fail("--parallel 1 recorded %d rows, --parallel 4 %d" % (len(rows1), len(rows4)))
    if w4 > 0.4 * w1:
        fail("--parallel 4 took %.1f s, more than 40%% of --parallel 1's %.1f s" % (w4, w1))
    first = [r[2] for r in rows4[1:5]]
    if len(set(first)) != 4:
        fail("the first four actions in flight were not distinct nodes: %r" % first)
    if "4-wide:" not in err4:
        fail("the progress line does not show the work in flight:\n%s" % err4[-1500:])
    print("ok   --parallel 4 / --parallel 1 wall time: %.2f" % (w4 / w1))


def kills(port, tdir, tmp):
    rng = random.Random(int(os.environ.get("KILN_TEST_SEED", "4242")))
    wd = os.path.join(tmp, "wdkill")
    db = os.path.join(wd, "history.db")
    seen = set()
    flying = set()  # LLM calls whose candidate was out for evaluation at a kill
    landed = 0
    started = False
    for attempt in range(KILLS + 20):
        p = run(["--resume"] if started else ["--parallel", "4"], port, tdir, wd, budget=KILL_BUDGET)
        if landed < KILLS:
            if landed == 0:  # the first kill lands while a candidate is out for evaluation
                end = time.time() + 30
                while time.time() < end and p.poll() is None and not flying:
                    time.sleep(0.02)
                    flying |= in_flight(db) if os.path.exists(db) else set()
            else:
                time.sleep(rng.uniform(0.5, 2.0 * DELAY + 1))
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                landed += 1
        out, err = p.communicate(timeout=300)
        if p.returncode not in (0, -9):
            fail("kiln run exited %d\n%s\n%s" % (p.returncode, out, err[-3000:]))
        if os.path.exists(db):
            rows = db_check(db)
            started = started or bool(rows)
            flying |= in_flight(db)
            now = {(r[0], r[1]) for r in rows}
            if not seen <= now:
                fail("recorded candidates vanished after a kill: %r" % (seen - now))
            seen = now
        if p.returncode == 0 and "finished" in out:
            break
    if landed < KILLS:
        fail("only %d kills landed while the run was alive" % landed)
    rows = final_check(wd, "after %d kills" % landed, KILL_BUDGET)
    con = sqlite3.connect(db)
    calls = {r[0] for r in con.execute("SELECT llm_call_id FROM candidates")}
    con.close()
    if not flying:
        fail("no kill landed while a candidate was out for evaluation")
    if not flying <= calls:
        fail("candidates in flight at a kill were not evaluated on resume (LLM calls %r)" % (flying - calls))
    print("ok   %d kills at random points, then --resume: %d iterations, each once; %d candidates in flight "
          "at a kill evaluated again without a new LLM call" % (landed, len(rows), len(flying)))


def several_targets(tdir, tmp):
    """Two targets in one coordinator with the tuner, 2 configurations in flight: a run
    each, an equal share of the iteration budget, an archive branch each, side by side."""
    t2 = os.path.join(tdir, "tiny2")
    shutil.copytree(os.path.join(tdir, "tiny"), t2)
    p = os.path.join(t2, "target.json")
    t = json.load(open(p))
    t["name"] = "tiny2"
    json.dump(t, open(p, "w"))
    wd = os.path.join(tmp, "wdtwo")
    p = subprocess.run([KILN, "run", "tiny", "tiny2", "--targets-dir", tdir, "--workdir", wd, "--policy", "tune",
                        "--iterations", "8", "--seeds", "1", "--parallel", "2"], capture_output=True, text=True,
                       timeout=300)
    if p.returncode != 0:
        fail("kiln run tiny tiny2 exited %d\n%s" % (p.returncode, p.stderr[-3000:]))
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    runs = con.execute("SELECT r.target, r.status, COUNT(c.id) FROM runs r JOIN candidates c ON c.run_id = r.id "
                       "GROUP BY r.id ORDER BY r.id").fetchall()
    con.close()
    if runs != [("tiny", "finished", 4), ("tiny2", "finished", 4)]:
        fail("two targets: runs %r" % runs)
    branches = subprocess.run(["git", "-C", os.path.join(wd, "archive"), "branch", "--list"], capture_output=True,
                              text=True).stdout
    table = p.stdout[p.stdout.index("target "):] if "target " in p.stdout else ""
    if "tiny/" not in branches or "tiny2/" not in branches or "tiny2" not in table:
        fail("two targets: branches %r, table %r" % (branches, table))
    print("ok   kiln run tiny tiny2: a run, a budget share and an archive branch each")


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-parallel-")
    tdir = make_target(tmp)
    srv, port = start_server(tmp, script(6), DELAY)
    env_ok = os.environ.get("KILN_BENCH_CHECK") == "0"
    if not env_ok:
        os.environ["KILN_BENCH_CHECK"] = "0"
    try:
        speedup(port, tdir, tmp)
        kills(port, tdir, tmp)
        several_targets(tdir, tmp)
    finally:
        srv.terminate()
        srv.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
