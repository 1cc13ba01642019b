#!/usr/bin/env python3
"""The main job's result table: for each target, its latest run in WORKDIR/history.db
(read-only) and the archive commit of that run's best.

    python3 scripts/results_table.py WORKDIR [TARGET ...]      # text table
    python3 scripts/results_table.py WORKDIR --json [TARGET ...]

Columns: target, seed time, best time, speedup over the seed, roofline of the best,
archive commit (the commit on <target>/<arch> whose Kiln-Candidate trailer names the
best). Times are the objective: the weighted geometric mean over the bench sizes (one
per size is printed under the table); '~' marks modeled times. Exit 1 when a target has
no run."""
import json
import os
import sqlite3
import subprocess
import sys

QUERY = """
SELECT r.id, r.target, r.arch, r.status, r.seed_candidate, r.best_candidate,
       ts.time_us, tb.time_us, tb.speedup, tb.roofline, tb.kind, c.iteration,
       (SELECT count(*) FROM candidates c2 WHERE c2.run_id = r.id)
  FROM runs r
  LEFT JOIN timings ts ON ts.candidate_id = r.seed_candidate
  LEFT JOIN timings tb ON tb.candidate_id = r.best_candidate
  LEFT JOIN candidates c ON c.id = r.best_candidate
 WHERE r.id = (SELECT max(id) FROM runs WHERE target = ?)"""


def archive_commit(workdir, target, arch, cand):
    """The commit on <target>/<arch> whose Kiln-Candidate trailer is cand ('' if none)."""
    git = subprocess.run(["git", "-C", os.path.join(workdir, "archive"), "log", f"{target}/{arch}",
                          "--format=%H %(trailers:key=Kiln-Candidate,valueonly,separator=)"],
                         capture_output=True, text=True)
    for line in git.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == str(cand):
            return parts[0]
    return ""


def sizes_of(db, cand):
    try:
        row = db.execute("SELECT sizes FROM timings WHERE candidate_id = ?", (cand,)).fetchone()
    except sqlite3.OperationalError:  # a history.db from before schema v3
        return []
    return json.loads(row[0]) if row and row[0] else []


def rows(workdir, targets):
    db = sqlite3.connect(f"file:{os.path.join(workdir, 'history.db')}?mode=ro", uri=True)
    out = []
    if not targets:
        targets = [r[0] for r in db.execute("SELECT DISTINCT target FROM runs ORDER BY target")]
    for t in targets:
        r = db.execute(QUERY, (t,)).fetchone()
        if not r:
            out.append({"target": t, "run": None})
            continue
        (run, target, arch, status, seed, best, seed_us, best_us, speedup, roofline, kind, it, ncand) = r
        out.append({"target": target, "run": run, "status": status, "candidates": ncand,
                    "seed_candidate": seed, "best_candidate": best, "best_iteration": it,
                    "seed_us": seed_us, "best_us": best_us, "speedup": speedup, "roofline": roofline,
                    "kind": kind, "commit": archive_commit(workdir, target, arch, best) if best else "",
                    "seed_sizes": sizes_of(db, seed) if seed else [], "best_sizes": sizes_of(db, best) if best else []})
    db.close()
    return out


def size_text(z):
    return ",".join(f"{k}={v}" for k, v in z["sizes"].items())


def print_table(rs):
    print(f"{'target':<17} {'seed (us)':>11} {'best (us)':>11} {'speedup':>8} {'roofline':>8}  {'archive commit':<12}  candidates")
    modeled = False
    for r in rs:
        if r["run"] is None:
            print(f"{r['target']:<17} (no run)")
            continue
        if r["best_us"] is None or r["seed_us"] is None:
            print(f"{r['target']:<17} (run {r['run']} {r['status']}: no candidate passed)")
            continue
        mark = "~" if r["kind"] == "modeled" else ""
        modeled |= bool(mark)
        print(f"{r['target']:<17} {r['seed_us']:>10.2f}{mark or ' '} {r['best_us']:>10.2f}{mark or ' '} "
              f"{r['speedup'] or 1:>7.2f}x {r['roofline'] or 0:>8.3f}  {r['commit'][:12] or '-':<12}  {r['candidates']}")
    print()
    print("times: the weighted geometric mean over each target's bench sizes (the objective the search ranks on)"
          + ("; ~ modeled by the emulator's cost model, not measured on a GPU" if modeled else ""))
    for r in rs:
        if r.get("best_sizes") and r.get("seed_sizes"):
            per = "; ".join(f"{size_text(b)}: {s['time_us']:.2f} -> {b['time_us']:.2f} us"
                            for s, b in zip(r["seed_sizes"], r["best_sizes"]))
            print(f"  {r['target']:<15} {per}")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    as_json = "--json" in argv
    args = [a for a in argv[2:] if a != "--json"]
    rs = rows(argv[1], args)
    if as_json:
        print(json.dumps(rs, indent=1))
    else:
        print_table(rs)
    return 1 if any(r["run"] is None for r in rs) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
