"""Shared by tests/integ_parallel.py and tests/integ_mpi.py: a small copy of adamw (the
evaluation is cheap next to the model's delay, as on a GPU next to a real model), the fake
LLM's script (families, reflections, the seed kernel as every other reply) and the server
answering after a fixed delay."""
import json
import os
import shutil
import subprocess
import sys

SRC = os.environ["KILN_SOURCE_ROOT"]
SEED = open(os.path.join(SRC, "targets/adamw/seed.cu")).read()
LAUNCH = open(os.path.join(SRC, "targets/adamw/launch.json")).read()


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def make_target(tmp):
    """targets/tiny: adamw verified at n = 1, 7, 1000 and timed at 65536."""
    tdir = os.path.join(tmp, "targets")
    shutil.copytree(os.path.join(SRC, "targets/adamw"), os.path.join(tdir, "tiny"))
    p = os.path.join(tdir, "tiny", "target.json")
    t = json.load(open(p))
    t["name"] = "tiny"
    t["symbols"]["n"]["verify"] = [1, 7, 1000]
    t["symbols"]["n"]["bench"] = [65536]
    json.dump(t, open(p, "w"), indent=1)
    return tdir


def kernel_reply(source):
    # the seed byte for byte (its compile is cached), as a fenced block adds no newline
    return "Kernel.\n\n```cuda\n%s\n```\n\n```json\n%s\n```\n" % (source.rstrip("\n"), LAUNCH)


def script(families, extra=()):
    """`families` depth-1 actions, empty reflections, the seed kernel by default; `extra`
    entries are matched first."""
    fenced = lambda o: "```json\n%s\n```" % json.dumps(o)
    fams = [{"op": "insert", "parent": 0, "title": "Family %d" % i, "description": "idea %d" % i,
             "rationale": "r", "difficulty": 2, "score": round(0.9 - 0.1 * i, 2)} for i in range(families)]
    return {"replies": [
        {"match": "## Task: analyse the target", "text": "Analysis.\n" + fenced({"ops": fams}), "times": -1},
        {"match": "## Task: reflect", "text": fenced({"ops": []}), "times": -1}] + list(extra),
        "default": {"text": kernel_reply(SEED), "usage": {"prompt": 1000, "completion": 100}}}


def start_server(tmp, sc, delay):
    path = os.path.join(tmp, "script.json")
    json.dump(sc, open(path, "w"))
    srv = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/fake_llm.py"), "--script", path,
                            "--log", os.path.join(tmp, "requests.jsonl"), "--delay", str(delay)],
                           stdout=subprocess.PIPE, text=True)
    return srv, int(srv.stdout.readline().strip())


def git_tip_candidate(archive):
    out = subprocess.run(["git", "-C", archive, "log", "--all", "-1", "--format=%B"], capture_output=True, text=True)
    tip = [int(l.split(":")[1]) for l in out.stdout.splitlines() if l.startswith("Kiln-Candidate:")]
    return tip[0] if tip else 0


def finished(wd, what):
    """The run finished, its archive tip is its best; returns (best, status)."""
    import sqlite3
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    best, status = con.execute("SELECT best_candidate, status FROM runs").fetchone()
    con.close()
    if status != "finished":
        fail("%s: run status %s" % (what, status))
    tip = git_tip_candidate(os.path.join(wd, "archive"))
    if tip != best:
        fail("%s: archive tip is candidate %d but the best is %d" % (what, tip, best))
