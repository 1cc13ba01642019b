"""Integration test of `kiln runs/log/show/diff/tree` on a fake night of search (see
tests/fake_history.c) or, with KILN_REVIEW_WORKDIR, on a real run's work directory (shape
checks only): text and --json output, filters, abbreviated ids, usage and missing-history
errors, and reading while another process holds a write transaction (WAL). Also that the
command table of cli/cli.h, `kiln --help` and README's CLI section agree."""
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from integ_review_common import KILN, check, cleanup, finish, kiln, kiln_json, workdir  # noqa: E402

RUN_KEYS = {"id", "target", "policy", "llm_model", "device", "gpu", "arch", "started", "ended", "status",
            "duration_s", "candidates", "passed", "best_candidate", "best_us", "best_speedup", "cost_usd",
            "tokens", "budgets", "spent", "process_gone"}
LOG_KEYS = {"id", "hash", "run_id", "target", "iteration", "node_id", "created", "outcome", "failed_check",
            "kind", "time_us", "speedup", "roofline", "new_best", "is_best"}
SHOW_KEYS = {"candidate", "compile", "verification", "timing", "node", "ancestry", "llm_call"}


def shape_checks(wd):
    """What must hold on any history, fake or real."""
    runs = kiln_json(wd, "runs") or []
    check(len(runs) >= 1, "runs: at least one run")
    for r in runs:
        check(RUN_KEYS <= set(r), "runs --json keys: missing %s" % (RUN_KEYS - set(r)))
    run = runs[-1]
    log = kiln_json(wd, "log", run["id"]) or []
    check(len(log) == run["candidates"], "log RUN lists every candidate of the run")
    for c in log:
        check(LOG_KEYS <= set(c), "log --json keys: missing %s" % (LOG_KEYS - set(c)))
    iters = [c["iteration"] for c in log]
    check(iters == sorted(iters), "log is in iteration order")
    passed = kiln_json(wd, "log", run["id"], "--passed") or []
    failed = kiln_json(wd, "log", run["id"], "--failed") or []
    check(len(passed) + len(failed) == len(log), "--passed + --failed = all")
    check(all(c["outcome"] == "passed" for c in passed), "--passed only passes")
    if log:
        c = log[-1]
        doc = kiln_json(wd, "show", c["id"]) or {}
        check(SHOW_KEYS <= set(doc), "show --json keys")
        check(doc.get("candidate", {}).get("hash") == c["hash"], "show by id")
        doc2 = kiln_json(wd, "show", c["hash"][:8]) or {}
        check(doc2.get("candidate", {}).get("id") == c["id"], "show by hash prefix")
        text = kiln(wd, "show", c["id"]).stdout
        check("kernel.cu:" in text and "launch.json:" in text, "show prints source and plan")
        d = kiln_json(wd, "diff", log[0]["id"], c["id"]) or {}
        check({"a", "b", "source_diff", "launch_diff", "knobs_diff"} <= set(d), "diff --json keys")
    tree = kiln_json(wd, "tree", run["id"])
    if tree is not None:
        check(tree["tree"]["nodes"][0]["id"] == 0, "tree --json holds the tree")
    archive = os.path.join(wd, "archive")
    if os.path.isdir(archive) and log:
        git = subprocess.run(["git", "-C", archive, "log", "--format=%(trailers:key=Kiln-Candidate,valueonly)",
                              "%s/%s" % (run["target"], run["arch"])], capture_output=True, text=True)
        committed = {int(x) for x in git.stdout.split() if x.isdigit()}
        marked = {c["id"] for c in log if c["new_best"]}
        check(git.returncode != 0 or marked == committed & {c["id"] for c in log},
              "log's new bests are the archive's commits: %s vs %s" % (marked, committed))


def live_checks(tmp):
    """A real `kiln run` writes while the review commands read."""
    wd = os.path.join(tmp, "live")
    env = dict(os.environ, KILN_WORKDIR=wd)
    if subprocess.run([KILN, "run", "--help"], capture_output=True).returncode != 0:
        print("note: no `kiln run` in this build; live checks skipped")
        return
    proc = subprocess.Popen([KILN, "run", "adamw", "--policy", "tune", "--device", "emu", "--iterations", "12"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen, deadline = 0, time.time() + 240
    while proc.poll() is None and time.time() < deadline:
        p = subprocess.run([KILN, "log", "adamw", "--json"], env=env, capture_output=True, text=True)
        if p.returncode == 0 and len(json.loads(p.stdout)) >= 2:
            seen = len(json.loads(p.stdout))
            break
        time.sleep(0.2)
    if proc.poll() is None:  # still writing: every command must work now
        for args in (["runs", "--json"], ["tree", "adamw", "--json"], ["show", "1", "--json"],
                     ["report", "adamw", "-o", os.path.join(tmp, "live.html")]):
            p = subprocess.run([KILN] + args, env=env, capture_output=True, text=True)
            check(p.returncode == 0, "kiln %s while the run writes: %s" % (" ".join(args), p.stderr))
        runs = json.loads(subprocess.run([KILN, "runs", "--json"], env=env, capture_output=True, text=True).stdout)
        check(runs and runs[0]["status"] in ("running", "finished"), "runs during a run")
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:  # the search itself is tested elsewhere (integ_run)
        print("note: kiln run failed (%s); live checks after the run skipped" % err[-500:])
        return
    final = json.loads(subprocess.run([KILN, "log", "adamw", "--json"], env=env, capture_output=True,
                                      text=True).stdout)
    check(len(final) == 12 and seen >= 2, "the live run's 12 candidates (seen %d mid-run)" % seen)
    shape_checks(wd)


def fake_checks(wd, ids):
    runs = kiln_json(wd, "runs")
    check([r["id"] for r in runs] == [ids["run_tune"], ids["run_llm"]], "runs newest first")
    llm = [r for r in runs if r["id"] == ids["run_llm"]][0]
    tune = [r for r in runs if r["id"] == ids["run_tune"]][0]
    check(llm["status"] == "finished" and tune["status"] == "running", "statuses")
    check(abs(llm["best_speedup"] - 4100 / 2420) < 1e-9, "best speedup of the llm run")
    check(llm["best_candidate"] == ids["winner"], "best candidate")
    check(7 * 3600 < llm["duration_s"] < 8 * 3600, "duration of the backdated run")
    check(abs(llm["cost_usd"] - sum(0.012 + 0.0009 * i for i in [0] + list(range(1, 15)) + [4, 8, 12])) < 1e-6,
          "cost = sum of priced calls (the timed-out call has no price)")
    check(tune["cost_usd"] is None and tune["llm_model"] is None, "tuner run: no model, unknown cost")
    check(tune["process_gone"] is True, "a running run whose process is gone is flagged")
    text = kiln(wd, "runs").stdout
    check("adamw" in text and "1.69x" in text and "finished" in text and "killed?" in text, "runs text")
    only = kiln_json(wd, "runs", "--target", "lion")
    check(len(only) == 1 and only[0]["target"] == "lion", "runs --target")

    log = kiln_json(wd, "log", "adamw")
    check(len(log) == ids["ncand_llm"], "log TARGET: all candidates of the target")
    check([c["id"] for c in log if c["new_best"]] == ids["bests"], "new bests marked in order")
    check(sum(1 for c in log if c["is_best"]) == 1, "one run best")
    text = kiln(wd, "log", "adamw").stdout
    check("* a new best when it ran" in text and "~ modeled time" in text, "log: legend for * and ~")
    check("PER SIZE (us)" in text and "153.8/2420" in text and "weighted geometric mean" in text,
          "log: every bench size's time and what TIME is")
    check(all(len(c["sizes"]) == 2 for c in log if c["outcome"] == "passed"), "log --json: sizes of every passed one")
    check("FAIL mismatch" in text and "compile error" in text and "FAIL race" in text, "verdicts in text")
    check("%6d*" % ids["winner"] in text, "new best marked with *")
    check(len(kiln_json(wd, "log", "adamw", "--passed")) == 8, "--passed")
    check(len(kiln_json(wd, "log", "adamw", "--failed")) == 7, "--failed")
    check([c["iteration"] for c in kiln_json(wd, "log", "adamw", "--node", "2")] == [2, 3, 4], "--node")
    check([c["iteration"] for c in kiln_json(wd, "log", "adamw", "--node", "#3")] == [5, 6, 11], "--node #N")
    check(len(kiln_json(wd, "log", "adamw", "--since", "3h")) == 4, "--since 3h (backdated: iterations 11-14)")
    check(len(kiln_json(wd, "log", "adamw", "--since", "2000-01-01")) == 15, "--since an old date")
    check(len(kiln_json(wd, "log", "adamw", "--since", "2999-01-01T00:00")) == 0, "--since the future")
    check(len(kiln_json(wd, "log", str(ids["run_tune"]))) == ids["ncand_tune"], "log RUN")
    kiln(wd, "log", "adamw", "--since", "yesterday", rc=2)
    kiln(wd, "log", "adamw", "--passed", "--failed", rc=2)
    p = kiln(wd, "tree", "adamx", rc=3)
    check("did you mean 'adamw'?" in p.stderr, "tree: a typo suggests the target: " + p.stderr.strip())
    p = kiln(wd, "tree", "adamw8bit", rc=3)
    check("did you mean 'adam8bit'?" in p.stderr, "tree adamw8bit suggests adam8bit: " + p.stderr.strip())
    p = kiln(wd, "log", "nosuchtarget", rc=3)
    check("no run of target" in p.stderr, "log of an unknown target says so")

    doc = kiln_json(wd, "show", ids["winner"])
    check(doc["candidate"]["is_best"] == 1 and doc["timing"]["time_us"] == 2420, "show: best, timing")
    bd = doc["timing"].get("breakdown") or [{}]
    check(bd[0].get("bound") == "dram" and bd[0].get("waves") == 3.9, "show --json: the per-launch breakdown")
    check(doc["timing"].get("fit", {}).get("holds") is True, "show --json: the counter fit")
    text = kiln(wd, "show", ids["winner"]).stdout
    check("launch 0: dram-bound, 2420 us; occupancy 1.00" in text, "show: the breakdown in text")
    check("size n=16777216 (weight 1): " in text and "size n=268435456 (weight 1): 2420 us" in text,
          "show: every bench size's time")
    check([z["sizes"] for z in doc["timing"]["sizes"]] == [{"n": 16777216}, {"n": 268435456}],
          "show --json: timing.sizes lists the bench sizes")
    check([a["id"] for a in doc["ancestry"]] == [0, 2, 4, 7], "show: ancestry root..node")
    check(doc["node"]["title"] == "float4 x4 with 512 threads", "show: node")
    check(doc["llm_call"]["model"] == "gpt-5" and "prompt" not in doc["llm_call"], "show: llm call without prompt")
    check(doc["verification"]["seeds"] == [11, 22, 33], "show: seeds as JSON")
    withp = kiln_json(wd, "show", ids["winner"], "--prompt")
    check("You are optimizing adamw" in withp["llm_call"]["prompt"], "show --prompt")
    text = kiln(wd, "show", ids["compile_error"]).stdout
    check("compile: FAILED" in text and "error: no suitable conversion" in text, "show: compile log")
    text = kiln(wd, "show", ids["mismatch"]).stdout
    check("FAIL mismatch" in text, "show: failed verdict")
    seed = kiln_json(wd, "show", ids["seed"])
    check(seed["llm_call"] is None and seed["node"] is None and seed["candidate"]["is_seed"] == 1, "show: seed")
    p = kiln(wd, "show", "zzzz", rc=3)
    check("hex digits" in p.stderr, "show: bad reference explained")
    kiln(wd, "show", "99999", rc=3)
    kiln(wd, "show", rc=2)

    d = kiln_json(wd, "diff", ids["seed"], ids["winner"])
    check("-#define BLOCK 256\n+#define BLOCK 512" in d["source_diff"], "diff: source")
    check(d["launch_diff"] == "", "diff: same launch plan")
    check('+\t"BLOCK":\t512' in d["knobs_diff"], "diff: knobs")
    check(d["a"]["time_us"] == 4100 and d["b"]["time_us"] == 2420, "diff: metrics")
    text = kiln(wd, "diff", ids["seed"], ids["winner"]).stdout
    check("--- a/kernel.cu (candidate %d)" % ids["seed"] in text and "time_us" in text, "diff text")

    t = kiln_json(wd, "tree", "adamw")
    check(t["iteration"] == 14 and t["revisions"] == 6, "tree: newest revision")
    statuses = {n["id"]: n["status"] for n in t["tree"]["nodes"]}
    check(statuses[3] == "too_hard" and statuses[7] == "solved", "tree: statuses")
    t5 = kiln_json(wd, "tree", ids["run_llm"], "--at", "5")
    check(t5["iteration"] == 4 and {n["id"] for n in t5["tree"]["nodes"]} == {0, 1, 2, 3, 4, 5, 6}, "tree --at")
    check(t5["rejected"][0]["op"] == "delete #99", "tree: rejected edits")
    text = kiln(wd, "tree", ids["run_llm"]).stdout
    check("  #2 Vectorized float4 loads [solved]" in text and "the run's best" in text, "tree text")
    kiln(wd, "tree", ids["run_llm"], "--at", "x", rc=2)

    # a writer holds a transaction open (as `kiln run` does between commits): readers go on
    db = sqlite3.connect(os.path.join(wd, "history.db"), isolation_level=None, timeout=1)
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO events (run_id, time, level, kind, message) VALUES (2, '2026-01-01T00:00:00Z',"
               " 'info', 'test', 'writer holds the lock')")
    check(len(kiln_json(wd, "log", "lion")) == ids["ncand_tune"], "log while a writer holds a transaction")
    check(len(kiln_json(wd, "runs")) == 2, "runs while a writer holds a transaction")
    db.execute("COMMIT")
    db.close()
    # no history at all
    p = kiln(wd + "-missing", "runs", rc=3)
    check("no history database" in p.stderr, "missing history explained")


def command_table_checks():
    """README "Adding a CLI command": the KILN_COMMANDS table in cli/cli.h is the one list
    of commands. Every row is dispatched (`kiln NAME --help` exits 0), listed by `kiln
    --help` in table order, and documented in README's CLI section; README names no command
    the table lacks."""
    root = os.environ.get("KILN_SOURCE_ROOT", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    with open(os.path.join(root, "cli", "cli.h")) as f:
        header = f.read()
    table = header[header.index("#define KILN_COMMANDS(X)"):]
    table = table[:table.index("\n\n")]
    names = re.findall(r"^\s*X\((\w+),", table, re.M)
    check(len(names) >= 10, "cli.h: KILN_COMMANDS rows found (%d)" % len(names))
    helptext = subprocess.run([KILN, "--help"], capture_output=True, text=True).stdout
    listed = re.findall(r"^  (\w+) ", helptext, re.M)
    check(listed == names, "kiln --help lists the table in order: %s vs %s" % (listed, names))
    for n in names:
        p = subprocess.run([KILN, n, "--help"], capture_output=True, text=True)
        check(p.returncode == 0 and p.stdout.strip(), "kiln %s --help is dispatched and prints usage" % n)
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    cli = readme[readme.index("\n## CLI\n"):]
    cli = cli[:cli.index("\n## ", 1)]
    documented = set(re.findall(r"`kiln (\w+)", cli))
    check(set(names) <= documented, "README's CLI section documents every command: missing %s"
          % sorted(set(names) - documented))
    check(documented <= set(names), "README's CLI section names only real commands: %s"
          % sorted(documented - set(names)))


def main():
    wd, ids, tmp = workdir()
    try:
        command_table_checks()
        shape_checks(wd)
        if ids:
            fake_checks(wd, ids)
            live_checks(tmp)
    finally:
        cleanup(tmp)
    finish()


main()
