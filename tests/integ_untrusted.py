"""The model's input reaching the host: kiln run against tests/fake_llm.py with hostile
replies — #include of /proc/self/environ, a planted file and a relative .env, a launch
plan with a trailing comment, 1024 #pragma message remarks with the provider key and an
environment secret echoed in the source, a 1 GB __device__ array, a scratch buffer 100x the
target's buffers. Asserts: the run completes its iterations; the include attempts are
refused before NVRTC (check compile, one line naming the header); the bad plan is sent back
with its reason and never reaches history.db; the stored compile log is capped at 64 KiB;
the device array and the scratch fail with check resource-limit; and no planted secret
(key, environment value, file contents) appears in any request body, history.db, the
archive, stdout or stderr."""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

KILN = os.environ["KILN_BIN"]
SRC = os.environ["KILN_SOURCE_ROOT"]
SEED = open(os.path.join(SRC, "targets/adamw/seed.cu")).read()
PLAN = open(os.path.join(SRC, "targets/adamw/launch.json")).read()

KEY = "sk-planted-provider-key-7c1f0e9a2b"
ENV_SECRET = "planted-env-token-5d4c3b2a19"
DOTENV = "planted-dotenv-value-0f9e8d7c"
FILE_SECRET = "planted-file-secret-a1b2c3d4"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def reply(kernel, launch=PLAN):
    return "Here it is.\n\n```cuda\n%s\n```\n\n```json\n%s\n```\n" % (kernel, launch)


def script(secret_file):
    fenced = lambda o: "```json\n%s\n```" % json.dumps(o)
    init = {"ops": [{"op": "insert", "parent": 0, "title": t, "description": "d", "rationale": "r",
                     "difficulty": 2, "score": s} for t, s in (("A", 0.9), ("B", 0.5), ("C", 0.3))]}
    pragmas = "".join('#pragma message("%s")\n' % ("x" * 60) for _ in range(1024))
    scratch = json.loads(PLAN)
    scratch["scratch"] = [{"name": "tmp", "dtype": "f32", "count": "n*100"}]
    return {"replies": [
        {"match": "## Task: analyse the target", "text": fenced(init)},
        {"text": reply('#include "/proc/self/environ"\n#include "%s"\n%s' % (secret_file, SEED))},
        {"text": reply(SEED, PLAN.rstrip() + "\n// the plan")},
        {"text": reply('#include ".env"\n%s' % SEED)},
        {"text": reply("// {{api_key}} %s\n%s%s" % (ENV_SECRET, pragmas, SEED))},
        {"text": reply("__device__ float hoard[1 << 28];\n" + SEED.replace("p[i] = pi;", "p[i] = pi; hoard[i & 1] = pi;"))},
        {"text": reply(SEED, json.dumps(scratch))},
    ], "default": {"text": reply(SEED)}}


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-untrusted-")
    secret_file = os.path.join(tmp, "secret.txt")
    open(secret_file, "w").write(FILE_SECRET + "\n")
    open(os.path.join(tmp, ".env"), "w").write("TOKEN=%s\n" % DOTENV)
    path = os.path.join(tmp, "script.json")
    json.dump(script(secret_file), open(path, "w"))
    log = os.path.join(tmp, "requests.jsonl")
    srv = subprocess.Popen([sys.executable, os.path.join(SRC, "tests/fake_llm.py"), "--script", path, "--log", log],
                           stdout=subprocess.PIPE, text=True)
    port = int(srv.stdout.readline().strip())
    wd = os.path.join(tmp, "wd")
    # the planted secrets: the provider key and a secret-named variable
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.update(KILN_LLM_BACKOFF_S="0.01", KILN_OPENAI_COMPATIBLE_API_KEY=KEY, KILN_TEST_SECRET_TOKEN=ENV_SECRET)
    llm = "openai-compatible:fake-coder@http://127.0.0.1:%d/v1" % port
    try:
        p = subprocess.run([KILN, "run", "adamw", "--workdir", wd, "--policy", "llm", "--llm", llm, "--iterations",
                            "7", "--max-attempts", "20", "--seed", "5", "--json"],
                           capture_output=True, text=True, env=env, timeout=600, cwd=tmp)
    finally:
        srv.terminate()
        srv.wait()
    if p.returncode != 0:
        fail("kiln run exited %d\n%s\n%s" % (p.returncode, p.stdout, p.stderr[-4000:]))
    s = json.loads(p.stdout)
    if s["status"] != "finished" or s["iterations"] != 7:
        fail("the run did not complete its iterations: %r\n%s" % (s, p.stderr[-3000:]))
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    rows = con.execute("SELECT c.iteration, c.outcome, v.failed_check, cr.log, c.launch FROM candidates c "
                       "LEFT JOIN verifications v ON v.candidate_id = c.id "
                       "LEFT JOIN compile_results cr ON cr.candidate_id = c.id ORDER BY c.iteration").fetchall()
    checks = [(r[1], r[2]) for r in rows]
    want = [("passed", None), ("compile_error", None), ("compile_error", None), ("passed", None),
            ("compile_error", None), ("failed", "resource-limit"), ("passed", None)]
    if checks != want:
        fail("outcomes %r, want %r\n%s" % (checks, want, p.stderr[-3000:]))
    if "refused" not in rows[1][3] or "proc/self/environ" not in rows[1][3] or '".env"' not in rows[2][3]:
        fail("the include attempts were not refused with the header named: %r / %r" % (rows[1][3], rows[2][3]))
    if "resource-limit: the module's __device__ globals take 1024 MiB" not in rows[4][3]:
        fail("the 1 GB __device__ array was not refused as a resource limit: %r" % rows[4][3])
    if "resource-limit" not in p.stderr:
        fail("the progress line does not name the resource-limit check")
    if len(rows[3][3].encode()) > 64 * 1024 or "bytes cut by kiln" not in rows[3][3]:
        fail("the #pragma message flood's log is %d bytes, not capped at 64 KiB" % len(rows[3][3].encode()))
    if "// the plan" in "".join(r[4] for r in rows):
        fail("the plan with a trailing comment reached history.db")
    ev = con.execute("SELECT message FROM events WHERE kind = 'reply-unparsable'").fetchall()
    if not ev or "comment" not in ev[0][0]:
        fail("the bad plan's reason was not recorded: %r" % ev)
    dump = "\n".join(con.iterdump())
    con.close()
    bodies = [json.dumps(json.loads(l)["body"]) for l in open(log)]
    if not any("comment after the value (JSON has none)" in b for b in bodies):
        fail("the repair prompt does not give the plan's reason")
    archive = subprocess.run(["git", "-C", os.path.join(wd, "archive"), "log", "-p", "--all"], capture_output=True,
                             text=True).stdout
    places = {"history.db": dump, "request bodies": "\n".join(bodies), "stdout": p.stdout, "stderr": p.stderr,
              "archive": archive}
    for name, text in places.items():
        for secret in (KEY, ENV_SECRET, DOTENV, FILE_SECRET):
            if secret in text:
                fail("%s leaks %s" % (name, secret))
    if dump.count("[redacted]") < 2:
        fail("the echoed key and environment secret were not redacted in history.db")
    print("ok: %d candidates, includes refused, bad plan sent back, log capped, resource limits, no secret out"
          % len(rows))


main()
