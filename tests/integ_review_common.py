"""Shared by tests/integ_review.py, integ_report.py and integ_promote.py: the kiln binary,
a work directory holding a history (a fresh fake one from tests/fake_history.c, or a real
run's when KILN_REVIEW_WORKDIR names one: then only shape checks run), and helpers that run
kiln and check its exit code. Exits 77 (skip) when the binaries are missing."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

KILN = os.environ.get("KILN_BIN", "")
FAKE = os.environ.get("KILN_FAKE_HISTORY", "")
REAL = os.environ.get("KILN_REVIEW_WORKDIR", "")
failures = []


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def finish():
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def workdir():
    """(workdir, ids, tmp): ids is fake_history's JSON, or None for a real history."""
    if not KILN or not os.path.exists(KILN):
        skip("no kiln binary (KILN_BIN)")
    if REAL:
        if not os.path.exists(os.path.join(REAL, "history.db")):
            skip("KILN_REVIEW_WORKDIR has no history.db")
        return REAL, None, None
    if not FAKE or not os.path.exists(FAKE):
        skip("no fake_history binary (KILN_FAKE_HISTORY)")
    tmp = tempfile.mkdtemp(prefix="kiln-review-")
    wd = os.path.join(tmp, "wd")
    out = subprocess.run([FAKE, wd], capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr)
        sys.exit(1)
    return wd, json.loads(out.stdout), tmp


def cleanup(tmp):
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


def kiln(wd, *args, rc=0, timeout=300):
    """Runs kiln with --workdir wd (given through the environment, as users may)."""
    env = dict(os.environ, KILN_WORKDIR=wd)
    p = subprocess.run([KILN] + [str(a) for a in args], capture_output=True, text=True, env=env,
                       timeout=timeout)
    check(p.returncode == rc, "kiln %s: exit %d, expected %d\nstdout: %s\nstderr: %s" %
          (" ".join(map(str, args)), p.returncode, rc, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def kiln_json(wd, *args):
    p = kiln(wd, *args, "--json")
    try:
        return json.loads(p.stdout)
    except ValueError:
        check(False, "kiln %s --json: not JSON: %s" % (" ".join(map(str, args)), p.stdout[:500]))
        return None
