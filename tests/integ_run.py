"""`kiln run` with no LLM configured: the tuner searches adamw's knob space on the
emulator end to end and finds a configuration modeled faster than the seed; every
candidate is a row, the best is the archive's tip with kernel.cu/launch.json/result.json,
the world model has one family per BLOCK value. SIGINT stops a run cleanly (exit 0,
status interrupted) and --resume completes it. Bad command lines are usage errors."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

KILN = os.environ["KILN_BIN"]
ENV = {k: v for k, v in os.environ.items()
       if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "KILN_LLM")}


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def run(*args, check=True):
    p = subprocess.run([KILN, *args], capture_output=True, text=True, env=ENV, timeout=600)
    if check and p.returncode != 0:
        fail("kiln %s exited %d\n%s\n%s" % (" ".join(args), p.returncode, p.stdout, p.stderr[-3000:]))
    return p


def git(wd, *args):
    return subprocess.run(["git", "-C", os.path.join(wd, "archive"), *args], capture_output=True,
                          text=True).stdout


def tuner_end_to_end():
    wd = tempfile.mkdtemp(prefix="kiln-run-")
    p = run("run", "adamw", "--workdir", wd, "--iterations", "12", "--seed", "3", "--json")
    s = json.loads(p.stdout)
    if s["policy"] != "tune" or s["status"] != "finished" or s["iterations"] != 12:
        fail("summary: %r" % s)
    if not (s["speedup"] > 1.0 and s["modeled"]):
        fail("the tuner found nothing modeled faster than the seed: %r" % s)
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    n = con.execute("SELECT COUNT(*) FROM candidates WHERE run_id = ?", (s["run"],)).fetchone()[0]
    rank, = con.execute("SELECT json_extract(config, '$.rank_time') FROM runs").fetchone()
    if rank != "launches":
        fail("the run's config does not record its rank time: %r" % rank)
    seed = con.execute("SELECT seed_candidate, best_candidate FROM runs").fetchone()
    revs = con.execute("SELECT COUNT(*) FROM wm_revisions").fetchone()[0]
    tree = json.loads(con.execute("SELECT tree FROM wm_revisions ORDER BY id DESC LIMIT 1").fetchone()[0])
    con.close()
    if n != 12 or seed[0] is None or seed[1] != s["best_candidate"]:
        fail("rows: %d candidates, seed/best %r" % (n, seed))
    if revs < 12:
        fail("only %d world-model revisions" % revs)
    titles = json.dumps(tree)
    for b in (64, 128, 256, 512, 1024):
        if "BLOCK=%d" % b not in titles:
            fail("world model has no family BLOCK=%d: %s" % (b, titles[:500]))
    log = git(wd, "log", "--all", "--format=%s")
    if "over seed" not in log:
        fail("archive log: %r" % log)
    tip = git(wd, "log", "--all", "-1", "--format=%B")
    if "Kiln-Candidate: %d" % s["best_candidate"] not in tip:
        fail("the archive tip is not the best: %r" % tip)
    for f in ("kernel.cu", "launch.json", "result.json"):
        if f not in git(wd, "ls-tree", "--name-only", "-r", "adamw/sm_90"):
            fail("archive lacks %s" % f)
    result = json.loads(git(wd, "show", "adamw/sm_90:result.json"))
    if result["candidate"] != s["best_candidate"] or not result["verdict"]["pass"]:
        fail("result.json: %r" % result)
    print("ok: tuner %.2fx over the seed (modeled), %d candidates, %d revisions" % (s["speedup"], n, revs))


def sigint_then_resume():
    wd = tempfile.mkdtemp(prefix="kiln-int-")
    p = subprocess.Popen([KILN, "run", "adamw", "--workdir", wd, "--iterations", "16", "--seeds", "6",
                          "--policy", "tune", "--seed", "5"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(2.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    if p.returncode != 0 or "interrupted" not in out:
        fail("SIGINT: exit %d\n%s\n%s" % (p.returncode, out, err[-2000:]))
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    status, = con.execute("SELECT status FROM runs").fetchone()
    ck = con.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
    done = con.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
    con.close()
    if status != "interrupted" or ck != 1:
        fail("after SIGINT: status %s, %d checkpoints" % (status, ck))
    # one definition of time per run: resuming with another is refused, nothing changes
    p = run("run", "--workdir", wd, "--resume", "--rank-time", "kernels", check=False)
    if p.returncode != 3 or "ranks on launches" not in p.stderr:
        fail("resume with another --rank-time: exit %d, %r" % (p.returncode, p.stderr[-500:]))
    p = run("run", "--workdir", wd, "--resume", "--json")
    s = json.loads(p.stdout)
    if s["status"] != "finished" or s["iterations"] != 16:
        fail("resume after SIGINT: %r" % s)
    print("ok: SIGINT after %d candidates, resumed to 16" % done)


def second_run_refused():
    wd = tempfile.mkdtemp(prefix="kiln-lock-")
    first = subprocess.Popen([KILN, "run", "adamw", "--workdir", wd, "--iterations", "8", "--seeds", "6",
                              "--policy", "tune"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=ENV)
    time.sleep(1.0)
    p = run("run", "adamw", "--workdir", wd, "--iterations", "2", check=False)
    first.communicate(timeout=300)
    if p.returncode != 3 or "pid %d" % first.pid not in p.stderr:
        fail("a second run on a busy work directory: exit %d, %r" % (p.returncode, p.stderr))
    if first.returncode != 0:
        fail("the first run failed")
    print("ok: a second run on the same work directory is refused naming pid %d" % first.pid)


def usage_errors():
    for args, want in ((["run"], 2), (["run", "adamw", "--policy", "magic"], 2),
                       (["run", "adamw", "--iterations", "-3"], 2), (["run", "adamw", "--bogus"], 2),
                       (["run", "adamw", "--rank-time", "fast"], 2),
                       (["run", "no_such_target", "--workdir", tempfile.mkdtemp()], 3),
                       (["run", "--resume", "--workdir", tempfile.mkdtemp()], 3)):
        p = run(*args, check=False)
        if p.returncode != want or not p.stderr.strip():
            fail("kiln %s: exit %d (want %d), stderr %r" % (" ".join(args), p.returncode, want, p.stderr))
    print("ok: usage errors")


if __name__ == "__main__":
    usage_errors()
    second_run_refused()
    tuner_end_to_end()
    sigint_then_resume()
