"""Faults a night can bring, through the `kiln run` command itself:
1. disk full: under a file-size limit (`ulimit -f`; a full disk gives ENOSPC the same way)
   the run stops with exit 3 and a message saying to free space, keeps what it committed,
   and `kiln run --resume` completes the budget once space is back;
2. a damaged history.db and a damaged git archive are refused at start with a recovery
   hint (exit 3), never a crash;
3. a stale lock left by a dead process is taken over with a warning."""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

KILN = os.environ["KILN_BIN"]
ENV = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "KILN_LLM")}


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def kiln(*args, limit_kb=None):
    cmd = [KILN, *args]
    if limit_kb:
        cmd = ["bash", "-c", 'ulimit -f %d; exec "$@"' % limit_kb, "kiln", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)


def disk_full():
    wd = tempfile.mkdtemp(prefix="kiln-full-")
    p = kiln("run", "adamw", "--workdir", wd, "--iterations", "16", "--policy", "tune", "--seed", "2",
             limit_kb=300)
    if p.returncode != 3 or "free space" not in p.stderr:
        fail("under a file-size limit: exit %d, stderr %r" % (p.returncode, p.stderr[-800:]))
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    before = con.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
    con.close()
    if before < 1:
        fail("nothing was kept before the disk filled")
    p = kiln("run", "--resume", "--workdir", wd)
    if p.returncode != 0 or "finished" not in p.stdout:
        fail("resume after space came back: exit %d\n%s\n%s" % (p.returncode, p.stdout, p.stderr[-1500:]))
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    ok = con.execute("PRAGMA integrity_check").fetchone()[0]
    iters = [r[0] for r in con.execute("SELECT iteration FROM candidates ORDER BY iteration")]
    best = con.execute("SELECT best_candidate FROM runs").fetchone()[0]
    con.close()
    if ok != "ok" or iters != list(range(16)):
        fail("after resume: integrity %s, iterations %r" % (ok, iters))
    tip = subprocess.run(["git", "-C", os.path.join(wd, "archive"), "log", "--all", "-1", "--format=%B"],
                         capture_output=True, text=True).stdout
    if "Kiln-Candidate: %d" % best not in tip:
        fail("archive tip %r is not the best %d" % (tip, best))
    print("ok: disk full after %d candidates: exit 3 with a clear message; resumed to 16" % before)


def damaged_files():
    wd = tempfile.mkdtemp(prefix="kiln-damage-")
    p = kiln("run", "adamw", "--workdir", wd, "--iterations", "2", "--policy", "tune")
    if p.returncode != 0:
        fail("setup run: %s" % p.stderr[-800:])
    # a damaged archive: one object of the tip's tree removed
    arch = os.path.join(wd, "archive")
    blob = subprocess.run(["git", "-C", arch, "rev-parse", "adamw/sm_90:kernel.cu"], capture_output=True,
                          text=True).stdout.strip()
    obj = os.path.join(arch, "objects", blob[:2], blob[2:])
    if not os.path.exists(obj):
        obj = os.path.join(arch, ".git", "objects", blob[:2], blob[2:])
    os.chmod(obj, 0o644)
    os.remove(obj)
    p = kiln("run", "--resume", "--workdir", wd)
    if p.returncode != 3 or "fsck" not in p.stderr:
        fail("damaged archive: exit %d, stderr %r" % (p.returncode, p.stderr[-800:]))
    # a damaged history.db: garbage over its first page
    db = os.path.join(wd, "history.db")
    for f in (db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    with open(db, "r+b") as f:
        f.write(os.urandom(4096))
    for args in (["run", "--resume", "--workdir", wd], ["log", "adamw", "--workdir", wd], ["runs", "--workdir", wd]):
        p = kiln(*args)
        if p.returncode != 3 or not ("move it aside" in p.stderr or "recover" in p.stderr):
            fail("damaged history.db, kiln %s: exit %d, stderr %r" % (args[0], p.returncode, p.stderr[-800:]))
    print("ok: a damaged archive and a damaged history.db are refused with a recovery hint")


def stale_lock():
    wd = tempfile.mkdtemp(prefix="kiln-stale-")
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(os.path.join(wd, "lock"), "w") as f:
        f.write("%d\n" % dead.pid)
    p = kiln("run", "adamw", "--workdir", wd, "--iterations", "2", "--policy", "tune")
    if p.returncode != 0 or "warning" not in p.stderr:
        fail("stale lock: exit %d, stderr %r" % (p.returncode, p.stderr[-800:]))
    print("ok: a stale lock from a dead pid is taken over with a warning")


if __name__ == "__main__":
    disk_full()
    damaged_files()
    stale_lock()
