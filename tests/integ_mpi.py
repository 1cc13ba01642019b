"""`mpirun -n 3 kiln run` on loopback: rank 0 coordinates (fake LLM, history.db, archive),
ranks 1 and 2 evaluate on the emulator. Skipped (77) without mpirun or when kiln was built
without MPI. (1) The results are identical in kind to the local path: the same outcomes,
checks, compile records and modeled times as `kiln run --parallel 2` for the same replies
(a compile error among them). (2) A worker rank killed with SIGKILL mid-run ends the job;
`mpirun ... kiln run --resume` then completes the budget with every iteration once."""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from integ_par_common import SEED, fail, finished, kernel_reply, make_target, script, start_server  # noqa: E402

KILN = os.environ["KILN_BIN"]
BUDGET = 8
TAG = "kiln-mpi-test-%d" % os.getpid()


def script_with_compile_error():
    broken = SEED.replace("const float gi = g[i];", "const float gi = g[i]")
    return script(4, [{"match": "## Task: implement action 1", "text": kernel_reply(broken), "times": -1}])


def mpirun():
    exe = shutil.which("mpirun")
    if not exe:
        return None
    cmd = [exe, "-n", "3", "--oversubscribe"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd + ["--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo",
                  "--mca", "oob_tcp_if_include", "lo"]


def kiln_args(tdir, wd, port, extra):
    return [KILN, "run", "tiny", "--targets-dir", tdir, "--workdir", wd, "--policy", "llm",
            "--llm", "openai-compatible:fake", "--base-url", "http://127.0.0.1:%d/v1" % port,
            "--iterations", str(BUDGET), "--seed", "5", "--seeds", "1", "--stagnation", "20",
            "--max-attempts", "20"] + extra


def rows(wd):
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    try:
        if con.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            fail("integrity_check failed in %s" % wd)
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'candidates'").fetchone():
            return []  # the schema is not written yet
        dup = con.execute("SELECT iteration FROM candidates GROUP BY run_id, iteration HAVING COUNT(*) > 1").fetchall()
        if dup:
            fail("iterations recorded twice: %r" % dup)
        return con.execute(
            "SELECT c.iteration, c.outcome, v.failed_check, v.checks_run, t.time_us, t.kind, "
            "cr.ok, length(cr.log) > 0 FROM candidates c LEFT JOIN verifications v ON v.candidate_id = c.id "
            "LEFT JOIN timings t ON t.candidate_id = c.id LEFT JOIN compile_results cr ON cr.candidate_id = c.id "
            "ORDER BY c.iteration").fetchall()
    finally:
        con.close()


def kinds(rs):
    """What a result is, whichever worker produced it: outcome, check, checks run, time."""
    return sorted({(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rs}, key=repr)


def complete(wd, what):
    rs = rows(wd)
    if [r[0] for r in rs] != list(range(BUDGET)):
        fail("%s: iterations %r, want 0..%d once each" % (what, [r[0] for r in rs], BUDGET - 1))
    finished(wd, what)
    return rs


def worker_pids(rank):
    """The kiln processes of this test with OMPI_COMM_WORLD_RANK=rank (the worker first)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            env = open("/proc/%s/environ" % d, "rb").read().split(b"\0")
        except OSError:
            continue
        if ("KILN_MPI_TEST_TAG=%s" % TAG).encode() in env and ("OMPI_COMM_WORLD_RANK=%d" % rank).encode() in env:
            pids.append(int(d))
    return sorted(pids)


def main():
    base = mpirun()
    if not base:
        print("skip: no mpirun")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="kiln-mpi-")
    tdir = make_target(tmp)
    srv, port = start_server(tmp, script_with_compile_error(), 0.5)
    env = dict(os.environ, KILN_BENCH_CHECK="0", KILN_MPI_TEST_TAG=TAG, KILN_THREADS="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_mpi_warn_on_fork="0",
               KILN_CACHE_DIR=os.path.join(tmp, "worker-cache"))
    try:
        # (1) local reference and the same search over MPI
        local = os.path.join(tmp, "local")
        p = subprocess.run(kiln_args(tdir, local, port, ["--parallel", "2"]), capture_output=True, text=True,
                           env=env, timeout=150)
        if p.returncode != 0:
            fail("local run exited %d\n%s" % (p.returncode, p.stderr[-3000:]))
        mpi = os.path.join(tmp, "mpi")
        p = subprocess.run(base + kiln_args(tdir, mpi, port, []), capture_output=True, text=True, env=env,
                           timeout=150)
        if "built without MPI" in p.stderr:
            print("skip: kiln was built without MPI")
            sys.exit(77)
        if p.returncode != 0:
            fail("mpirun kiln run exited %d\n%s\n%s" % (p.returncode, p.stdout[-2000:], p.stderr[-3000:]))
        a, b = complete(local, "local"), complete(mpi, "mpi")
        if kinds(a) != kinds(b):
            fail("results differ in kind:\nlocal %r\nmpi   %r" % (kinds(a), kinds(b)))
        if not any(r[1] == "compile_error" and r[7] for r in b) or not any(r[1] == "passed" for r in b):
            fail("the MPI run lacks a compile error with its log or a passing candidate: %r" % b)
        if "2-wide" not in p.stderr:
            fail("the coordinator did not use the two worker ranks:\n%s" % p.stderr[-1500:])
        print("ok   mpirun -n 3: %d candidates, results identical in kind to --parallel 2" % len(b))
        # (2) a worker rank dies mid-run; --resume completes
        wd = os.path.join(tmp, "killed")
        proc = subprocess.Popen(base + kiln_args(tdir, wd, port, []), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        killed = False
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not killed:
            time.sleep(0.3)
            if os.path.exists(os.path.join(wd, "history.db")) and len(rows(wd)) >= 3:
                pids = worker_pids(2)
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed = True
        out, err = proc.communicate(timeout=120)
        if not killed:
            fail("no worker rank was killed (run ended %r)\n%s" % (proc.returncode, err[-2000:]))
        if proc.returncode == 0 and "finished" in out:
            fail("the job went on after a worker rank died")
        before = rows(wd)
        p = subprocess.run(base + [KILN, "run", "--resume", "--workdir", wd], capture_output=True, text=True,
                           env=env, timeout=150)
        if p.returncode != 0:
            fail("resume exited %d\n%s" % (p.returncode, p.stderr[-3000:]))
        after = complete(wd, "resumed")
        if not {r[0] for r in before} <= {r[0] for r in after}:
            fail("candidates recorded before the kill are gone")
        print("ok   worker rank 2 killed after %d candidates; --resume completed %d" % (len(before), len(after)))
    finally:
        srv.terminate()
        srv.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
