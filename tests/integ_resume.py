"""Kill / resume: `kiln run` (the tuner on the emulator) is killed with SIGKILL at random
points at least 20 times and resumed each time. After every kill history.db must pass
PRAGMA integrity_check, no (run, iteration) may be recorded twice, and the git archive
must agree with the database once the run is resumed; the run must finally complete its
iteration budget with every iteration recorded exactly once."""
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

KILN = os.environ["KILN_BIN"]
BUDGET = 20
KILLS = int(os.environ.get("KILN_RESUME_KILLS", "20"))


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def db_check(db):
    con = sqlite3.connect(db)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            fail("integrity_check: %s" % ok)
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone():
            return [], 0  # killed before the schema was written
        dup = con.execute(
            "SELECT run_id, iteration, COUNT(*) FROM candidates GROUP BY run_id, iteration HAVING COUNT(*) > 1"
        ).fetchall()
        if dup:
            fail("candidates recorded twice: %r" % dup)
        runs = con.execute("SELECT id, best_candidate, status FROM runs").fetchall()
        n = con.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
        return runs, n
    finally:
        con.close()


def git_tip_candidate(archive):
    out = subprocess.run(["git", "-C", archive, "log", "--all", "-1", "--format=%B"],
                         capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("Kiln-Candidate:"):
            return int(line.split(":")[1])
    return 0


def archive_check(wd):
    """Every archive commit names a passed candidate of the database."""
    archive = os.path.join(wd, "archive")
    out = subprocess.run(["git", "-C", archive, "log", "--all", "--format=%H %(trailers:key=Kiln-Candidate,valueonly)"],
                         capture_output=True, text=True)
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    try:
        for line in out.stdout.split("\n"):
            parts = line.split()
            if len(parts) < 2:
                continue
            cid = int(parts[1])
            row = con.execute("SELECT outcome FROM candidates WHERE id = ?", (cid,)).fetchone()
            if not row or row[0] != "passed":
                fail("archive commit %s names candidate %d, which is %r in history.db" % (parts[0], cid, row))
    finally:
        con.close()


def main():
    rng = random.Random(int(os.environ.get("KILN_TEST_SEED", "12345")))
    wd = tempfile.mkdtemp(prefix="kiln-resume-")
    db = os.path.join(wd, "history.db")
    base = [KILN, "run", "--workdir", wd]
    first = True
    kills = 0
    finished = False
    for attempt in range(KILLS + 30):
        cmd = base + (["adamw", "--iterations", str(BUDGET), "--seed", "7", "--policy", "tune", "--seeds", "4"] if first else ["--resume"])
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if kills < KILLS:
            time.sleep(rng.uniform(0.02, 0.5))
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                kills += 1
            out, err = p.communicate()
        else:
            out, err = p.communicate(timeout=300)
        if first and os.path.exists(db):
            con = sqlite3.connect(db)
            try:
                first = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
            except sqlite3.OperationalError:  # killed before the schema was written
                first = True
            con.close()
        if p.returncode not in (0, -9):
            fail("kiln run exited %d\nstdout: %s\nstderr: %s" % (p.returncode, out, err[-2000:]))
        if os.path.exists(db):
            runs, n = db_check(db)
            if len(runs) > 1:
                fail("resume created a new run: %r" % runs)
        if p.returncode == 0 and "finished" in out:
            finished = True
            break
    print("kills: %d" % kills)
    if kills < KILLS:
        fail("only %d kills landed while the run was alive" % kills)
    if not finished:
        fail("the run never finished its budget")
    runs, n = db_check(db)
    if n != BUDGET:
        fail("expected %d candidates after the budget, found %d" % (BUDGET, n))
    run_id, best, status = runs[0]
    if status != "finished":
        fail("run status %s" % status)
    tip = git_tip_candidate(os.path.join(wd, "archive"))
    if tip != best:
        fail("archive tip is candidate %d but history.db's best is %d" % (tip, best))
    archive_check(wd)
    con = sqlite3.connect(db)
    iters = [r[0] for r in con.execute("SELECT iteration FROM candidates ORDER BY iteration")]
    con.close()
    if iters != list(range(BUDGET)):
        fail("iterations are not 0..%d exactly once: %r" % (BUDGET - 1, iters))
    print("ok: %d kills, %d candidates, best %d at the archive tip" % (kills, n, best))


if __name__ == "__main__":
    main()
