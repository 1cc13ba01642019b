"""Throughput of kiln run --parallel N against the fake LLM answering after a fixed delay,
on the small adamw copy of tests/integ_par_common.py (the issue's overnight figure).
Prints per width the wall time, the time per round (one LLM call + one evaluation per
slot), iterations per hour (the init call and the seed's evaluation, paid once, left out)
and the coordinator's own CPU per candidate (utime+stime of the kiln process, its
evaluation children excluded).
  python3 bench/par_throughput.py DELAY_S N:ITERATIONS ...   e.g. 20 1:4 2:5 4:9 8:17
KILN_BIN (default build/cli/kiln) and KILN_SOURCE_ROOT (default this tree) as in the tests."""
import json, os, sqlite3, subprocess, sys, tempfile, time
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("KILN_SOURCE_ROOT", ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
from integ_par_common import make_target, script, start_server
KILN = os.environ.get("KILN_BIN", os.path.join(ROOT, "build/cli/kiln"))
if len(sys.argv) < 3:
    sys.exit(__doc__)
D = float(sys.argv[1]); plan = [tuple(map(int, x.split(":"))) for x in sys.argv[2:]]
tmp = tempfile.mkdtemp(prefix="kiln-par-")
tdir = make_target(tmp)
srv, port = start_server(tmp, script(12), D)
tick = os.sysconf("SC_CLK_TCK")
env = dict(os.environ, KILN_BENCH_CHECK="0")
for n, iters in plan:
    wd = os.path.join(tmp, "wd%d" % n)
    cmd = [KILN, "run", "tiny", "--targets-dir", tdir, "--workdir", wd, "--policy", "llm", "--llm",
           "openai-compatible:fake", "--base-url", "http://127.0.0.1:%d/v1" % port, "--iterations", str(iters),
           "--seed", "5", "--seeds", "1", "--stagnation", "100", "--max-attempts", "100", "--parallel", str(n)]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    cpu = 0
    while p.poll() is None:
        try:
            f = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
            cpu = (int(f[11]) + int(f[12])) / tick
        except (OSError, IndexError):
            pass
        time.sleep(0.05)
    wall = time.time() - t0
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    rows = con.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
    init = con.execute("SELECT SUM(latency_s) FROM llm_calls WHERE purpose = 'init'").fetchone()[0] or 0
    seedv = con.execute("SELECT wall_s FROM verifications WHERE candidate_id = 1").fetchone()[0] or 0
    con.close()
    rounds = -(-(iters - 1) // n)
    per_round = (wall - init - seedv) / rounds
    e = per_round - D
    print(json.dumps({"parallel": n, "iterations": rows, "wall_s": round(wall, 1), "rounds": rounds,
                      "per_round_s": round(per_round, 2), "overhead_per_round_s": round(e, 2),
                      "iter_per_h_measured": round(3600 * (rows - 1) / (wall - init - seedv)),
                      "coordinator_cpu_per_candidate_ms": round(1000 * cpu / rows, 1)}), flush=True)
srv.terminate(); srv.wait()
