#!/usr/bin/env python3
"""Integration: the LLM client through `kiln llm ping` against tests/fake_llm.py (a real HTTP
server). Covers both APIs streamed and not, every retried status (408 409 429 500 502 503 504
529), every status that must not be retried (400 401 403 404 413 422, 429 quota), retry-after
and retry-after-ms honoured, connection refused, hangs (timeout), garbage, drops and error
events after a 200, truncation, the circuit breaker, cached-token and cost accounting, prices
overrides, and the key-leak grep: a planted key must not appear in stdout, stderr, history.db
or anything else kiln wrote, even when the server echoes it back."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

KILN = os.environ.get("KILN_BIN")
ROOT = os.environ.get("KILN_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), ".."))
FAKE = os.path.join(ROOT, "tests", "fake_llm.py")
KEY = "sk-planted-LEAKCHECK-5f4e3d2c1b0a9988"
AKEY = "sk-ant-planted-LEAKCHECK-77665544"
TMP = tempfile.mkdtemp(prefix="kiln-integ-llm-")
failures = []
count = 0


def check(cond, what):
    global count
    count += 1
    if not cond:
        failures.append(what)
        print("FAIL " + what)
    return cond


class Fake:
    def __init__(self, script):
        self.dir = tempfile.mkdtemp(dir=TMP)
        self.log = os.path.join(self.dir, "requests.jsonl")
        path = os.path.join(self.dir, "script.json")
        with open(path, "w") as f:
            json.dump(script, f)
        self.p = subprocess.Popen([sys.executable, FAKE, "--script", path, "--log", self.log],
                                  stdout=subprocess.PIPE, text=True)
        self.port = int(self.p.stdout.readline())
        self.url = "http://127.0.0.1:%d/v1" % self.port

    def requests(self):
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def close(self):
        self.p.terminate()
        self.p.wait(timeout=10)


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("KILN_LLM", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "KILN_PRICES")}
    env.update({"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": AKEY, "KILN_WORKDIR": os.path.join(TMP, "wd"),
                "KILN_LLM_BACKOFF_S": "0.05"})
    env.update(extra)
    return env


def kiln(args, env=None, timeout=120):
    r = subprocess.run([KILN] + args, capture_output=True, text=True, env=env or base_env(), timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def ping(script, spec="openai:gpt-5", extra=(), env=None):
    """Runs `kiln llm ping --json` against a fresh fake server; returns (rc, calls, stderr, requests)."""
    fake = Fake(script)
    try:
        t0 = time.time()
        rc, out, err = kiln(["llm", "ping", "--json", "--llm", spec, "--base-url", fake.url] + list(extra), env)
        calls = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        reqs = fake.requests()
    finally:
        fake.close()
    for c in calls:
        c["_wall"] = time.time() - t0
    return rc, calls, err, reqs


def one(script, name, **kw):
    rc, calls, err, reqs = ping(script, **kw)
    if not check(len(calls) == 1, "%s: one JSON call printed (rc %d, stderr %s)" % (name, rc, err.strip())):
        return rc, {"status": None, "attempts": -1}, reqs
    return rc, calls[0], reqs


ERR = {"error": {"message": "transient trouble", "type": "server_error"}}
OK = {"text": "pong", "usage": {"prompt": 1200, "completion": 10, "cached": 1024}}


def test_basic_openai():
    rc, c, reqs = one([OK], "openai basic")
    check(rc == 0 and c["status"] == "ok" and c["text"] == "pong", "openai basic: ok pong (%r)" % c)
    check(c["attempts"] == 1 and c["request_id"] == "fake-1", "openai basic: 1 attempt, request id")
    check(c["prompt_tokens"] == 1200 and c["cached_tokens"] == 1024 and c["completion_tokens"] == 10,
          "openai basic: tokens %r" % c)
    want = (176 * 1.25 + 1024 * 0.125 + 10 * 10.0) / 1e6
    check(abs(c["cost_usd"] - want) < 1e-12, "openai basic: cost %r want %r" % (c["cost_usd"], want))
    r = reqs[0]
    check(r["path"] == "/v1/chat/completions", "openai basic: path")
    check(r["headers"].get("authorization") == "Bearer " + KEY, "openai basic: bearer key sent")
    check(r["body"].get("max_completion_tokens") == 512 and "max_tokens" not in r["body"],
          "openai basic: max_completion_tokens")
    check(r["body"]["messages"][0]["role"] == "system", "openai basic: system message first")


def test_basic_anthropic():
    script = [{"text": "pong", "usage": {"prompt": 5000, "completion": 20, "cached": 3000, "cache_write": 1500}}]
    rc, c, reqs = one(script, "anthropic basic", spec="anthropic:claude-sonnet-4-5")
    check(rc == 0 and c["status"] == "ok" and c["text"] == "pong", "anthropic basic: ok (%r)" % c)
    check(c["prompt_tokens"] == 5000 and c["cached_tokens"] == 3000 and c["cache_write_tokens"] == 1500,
          "anthropic basic: input = input + cache read + cache write (%r)" % c)
    want = (500 * 3.0 + 3000 * 0.30 + 1500 * 3.75 + 20 * 15.0) / 1e6
    check(abs(c["cost_usd"] - want) < 1e-12, "anthropic basic: cost %r want %r" % (c["cost_usd"], want))
    h = reqs[0]["headers"]
    check(reqs[0]["path"] == "/v1/messages", "anthropic basic: path")
    check(h.get("x-api-key") == AKEY and "authorization" not in h, "anthropic basic: x-api-key only")
    check(h.get("anthropic-version") == "2023-06-01", "anthropic basic: anthropic-version")
    b = reqs[0]["body"]
    check(b.get("max_tokens") == 512 and b["system"][0].get("cache_control") == {"type": "ephemeral"},
          "anthropic basic: max_tokens and cache_control on the stable part")


def test_retry_statuses():
    for s in (408, 409, 429, 500, 502, 503, 504, 529):
        rc, c, reqs = one([{"status": s, "body": ERR}, OK], "retry %d" % s)
        check(rc == 0 and c["status"] == "ok" and c["attempts"] == 2 and len(reqs) == 2,
              "status %d is retried once then ok (%r, %d requests)" % (s, c.get("status"), len(reqs)))


def test_no_retry_statuses():
    for s in (400, 401, 403, 404, 413, 422):
        rc, c, reqs = one([{"status": s, "body": {"error": {"message": "no good %d" % s,
                                                             "type": "invalid_request_error"}}}, OK],
                          "no retry %d" % s)
        check(rc == 1 and c["status"] == "error" and c["attempts"] == 1 and len(reqs) == 1 and c["fatal"],
              "status %d is not retried and is fatal (%r)" % (s, c))
        check("HTTP %d" % s in (c.get("error") or "") and "no good" in c["error"],
              "status %d: readable error line (%r)" % (s, c.get("error")))
    rc, c, reqs = one([{"fault": "quota"}, OK], "quota")
    check(c["attempts"] == 1 and c["fatal"] and "quota" in c["error"], "429 quota: not retried, fatal (%r)" % c)
    ctx = {"status": 400, "body": {"error": {"message": "maximum context length is 8192 tokens",
                                             "code": "context_length_exceeded"}}}
    rc, c, reqs = one([ctx, OK], "context length")
    check(c["attempts"] == 1 and c["status"] == "error" and not c["fatal"],
          "400 context length: not retried, not fatal (%r)" % c)


def gap(reqs):
    return reqs[1]["t"] - reqs[0]["t"]


def test_retry_after():
    rc, c, reqs = one([{"fault": "429", "retry_after": 1}, OK], "retry-after")
    check(c["status"] == "ok" and len(reqs) == 2 and gap(reqs) >= 0.95,
          "retry-after: 1 waited (gap %.2f s)" % (gap(reqs) if len(reqs) == 2 else -1))
    rc, c, reqs = one([{"status": 503, "headers": {"retry-after-ms": "600"}, "body": ERR}, OK], "retry-after-ms")
    check(c["status"] == "ok" and len(reqs) == 2 and 0.55 <= gap(reqs) < 3,
          "retry-after-ms: 600 waited (gap %.2f s)" % (gap(reqs) if len(reqs) == 2 else -1))
    # without retry-after the backoff is short (base 0.05 s, full jitter)
    rc, c, reqs = one([{"status": 500, "body": ERR}, OK], "jitter")
    check(len(reqs) == 2 and gap(reqs) < 0.5, "no retry-after: short jittered backoff")


def test_exhausted_and_refused():
    rc, c, reqs = one({"replies": [], "default": {"status": 503, "body": ERR, "times": -1}}, "exhausted",
                      extra=["--retries", "2"])
    check(rc == 1 and c["status"] == "error" and c["attempts"] == 3 and len(reqs) == 3 and not c["fatal"],
          "503 forever: 3 attempts then error, not fatal (%r)" % c)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc, out, err = kiln(["llm", "ping", "--json", "--llm", "openai:gpt-5", "--base-url",
                         "http://127.0.0.1:%d/v1" % port, "--retries", "2"])
    c = json.loads(out.splitlines()[0]) if out.strip() else {}
    check(rc == 1 and c.get("status") == "error" and c.get("attempts") == 3 and c.get("prompt_tokens") == 0,
          "connection refused: retried, error, nothing billed (%r)" % c)


def test_hang_timeout():
    rc, c, reqs = one([{"fault": "hang", "hang_s": 20}, {"fault": "hang", "hang_s": 20}], "hang",
                      extra=["--timeout", "1", "--retries", "1"])
    check(c["status"] == "timeout" and c["attempts"] == 2 and len(reqs) == 2 and 1.9 <= c["latency_s"] < 10,
          "hang: two 1 s timeouts then status timeout (%r)" % c)


def test_garbage_and_drop():
    rc, c, reqs = one([{"fault": "garbage"}, OK], "garbage")
    check(c["status"] == "ok" and c["attempts"] == 2, "garbage 200: retried (%r)" % c)
    rc, c, reqs = one([{"fault": "drop", "text": "x" * 400}, OK], "drop plain")
    check(c["status"] == "ok" and c["attempts"] == 2, "dropped body: retried (%r)" % c)
    for spec in ("openai:gpt-5", "anthropic:claude-sonnet-4-5"):
        rc, c, reqs = one([{"fault": "drop", "drop_after": 2, "text": "partial answer here"},
                           {"text": "whole"}], "drop stream " + spec, spec=spec, extra=["--stream"])
        check(c["status"] == "ok" and c["attempts"] == 2 and c["text"] == "whole",
              "%s: stream dropped mid-way is retried, text not mixed (%r)" % (spec, c))
    no_done = {"sse": [{"data": {"id": "x", "choices": [{"index": 0, "delta": {"content": "hi"}}]}}]}
    rc, c, reqs = one([no_done, OK], "no [DONE]", extra=["--stream"])
    check(c["status"] == "ok" and c["attempts"] == 2, "stream without [DONE]: retried (%r)" % c)


def test_error_after_200():
    anth = {"sse": [
        {"event": "message_start", "data": {"type": "message_start", "message": {
            "id": "msg_x", "usage": {"input_tokens": 10, "output_tokens": 1}}}},
        {"event": "content_block_delta", "data": {"type": "content_block_delta",
                                                  "delta": {"type": "text_delta", "text": "half"}}},
        {"event": "error", "data": {"type": "error", "error": {"type": "overloaded_error",
                                                              "message": "Overloaded"}}}]}
    rc, c, reqs = one([anth, {"text": "pong"}], "anthropic error event", spec="anthropic:claude-sonnet-4-5",
                      extra=["--stream"])
    check(c["status"] == "ok" and c["attempts"] == 2 and c["text"] == "pong",
          "anthropic overloaded error after 200: retried (%r)" % c)
    oai = {"sse": [{"data": {"id": "c", "choices": [{"index": 0, "delta": {"content": "ha"}}]}},
                   {"data": {"error": {"message": "The server had an error", "type": "server_error"}}}]}
    rc, c, reqs = one([oai, {"text": "pong"}], "openai error event", extra=["--stream"])
    check(c["status"] == "ok" and c["attempts"] == 2, "openai server_error after 200: retried (%r)" % c)
    bad = {"sse": [{"event": "error", "data": {"type": "error", "error": {
        "type": "invalid_request_error", "message": "prompt rejected"}}}]}
    rc, c, reqs = one([bad, OK], "fatal error event", spec="anthropic:claude-sonnet-4-5", extra=["--stream"])
    check(c["status"] == "error" and c["attempts"] == 1 and c["fatal"] and "prompt rejected" in c["error"],
          "invalid_request_error after 200: not retried, fatal (%r)" % c)


def test_truncation():
    for spec in ("openai:gpt-5", "anthropic:claude-sonnet-4-5"):
        for stream in ([], ["--stream"]):
            rc, c, reqs = one([{"fault": "truncated", "text": "half a kern"}, OK], "truncated",
                              spec=spec, extra=stream)
            check(rc == 1 and c["status"] == "truncated" and c["attempts"] == 1 and "truncated" in c["error"],
                  "%s %s: truncated answer reported, not retried (%r)" % (spec, stream, c))


def test_reply_cap():
    for stream in ([], ["--stream"]):
        rc, c, reqs = one([{"text": "y" * 5000}, OK], "cap", extra=["--max-reply", "1000"] + stream)
        check(rc == 1 and c["status"] == "error" and c["attempts"] == 1 and "cap" in (c["error"] or ""),
              "reply over --max-reply %s: an error, not retried (%r)" % (stream, c))


def test_streaming():
    rc, c, reqs = one([{"text": "hello streaming world", "chunk_delay": 0.05,
                        "usage": {"prompt": 300, "completion": 7, "cached": 256, "reasoning": 3}}],
                      "openai stream", extra=["--stream"])
    check(c["status"] == "ok" and c["text"] == "hello streaming world", "openai stream: text (%r)" % c)
    check(c["cached_tokens"] == 256 and c["reasoning_tokens"] == 3, "openai stream: usage from the last chunk")
    b = reqs[0]["body"]
    check(b.get("stream") is True and b.get("stream_options") == {"include_usage": True},
          "openai stream: stream + include_usage requested")
    check(reqs[0]["headers"].get("accept") == "text/event-stream", "openai stream: Accept header")
    rc, c, reqs = one([{"text": "anthropic streamed", "usage": {"prompt": 2000, "completion": 9, "cached": 1800,
                                                                "cache_write": 100}}],
                      "anthropic stream", spec="anthropic:claude-haiku-4-5", extra=["--stream"])
    check(c["status"] == "ok" and c["text"] == "anthropic streamed", "anthropic stream: text (%r)" % c)
    check(c["prompt_tokens"] == 2000 and c["cached_tokens"] == 1800 and c["cache_write_tokens"] == 100
          and c["completion_tokens"] == 9, "anthropic stream: cache read/write accounted (%r)" % c)
    want = (100 * 1.0 + 1800 * 0.10 + 100 * 1.25 + 9 * 5.0) / 1e6
    check(abs(c["cost_usd"] - want) < 1e-12, "anthropic stream: cost %r want %r" % (c["cost_usd"], want))


def test_breaker():
    script = {"replies": [], "default": {"status": 500, "body": ERR}}
    rc, calls, err, reqs = ping(script, extra=["--retries", "0", "--breaker", "2", "--breaker-pause", "0.5",
                                               "--repeat", "4"])
    paused = [c["paused_s"] for c in calls]
    check(len(calls) == 4 and paused[0] == 0 and paused[1] == 0 and paused[2] >= 0.45 and paused[3] >= 0.45,
          "breaker: open after 2 failures, pauses before calls 3 and 4 (%r)" % paused)
    check(len(reqs) == 4 and reqs[2]["t"] - reqs[1]["t"] >= 0.45, "breaker: the server saw the pause")
    script = [{"status": 500, "body": ERR}, {"status": 500, "body": ERR}, OK, OK]
    rc, calls, err, reqs = ping(script, extra=["--retries", "0", "--breaker", "2", "--breaker-pause", "0.3",
                                               "--repeat", "4"])
    st = [(c["status"], c["paused_s"] > 0) for c in calls]
    check(st == [("error", False), ("error", False), ("ok", True), ("ok", False)],
          "breaker: half-open call succeeds and closes it (%r)" % st)


def test_compatible_and_prices():
    fake = Fake([OK, OK])
    try:
        spec = "openai-compatible:qwen2.5-coder-32b@" + fake.url
        env = base_env()
        del env["OPENAI_API_KEY"]
        rc, out, err = kiln(["llm", "ping", "--json", "--llm", spec], env)
        c = json.loads(out.splitlines()[0]) if out.strip() else {}
        check(rc == 0 and c.get("status") == "ok" and c.get("cost_usd", 0) is None,
              "compatible server without key: ok, cost unknown (null) (%r %s)" % (c, err))
        prices = os.path.join(TMP, "prices.json")
        with open(prices, "w") as f:
            json.dump({"models": {"openai-compatible:qwen2.5-coder-32b": {"input": 1, "output": 2}}}, f)
        env["KILN_PRICES"] = prices
        rc, out, err = kiln(["llm", "ping", "--json", "--llm", spec], env)
        c = json.loads(out.splitlines()[0]) if out.strip() else {}
        check(c.get("cost_usd") is not None and abs(c["cost_usd"] - (1200 * 1 + 10 * 2) / 1e6) < 1e-12,
              "KILN_PRICES prices a local model; no cache discount unless stated (%r)" % c.get("cost_usd"))
        reqs = fake.requests()
        check("authorization" not in reqs[0]["headers"] and reqs[0]["body"].get("max_tokens") == 512,
              "compatible: no Authorization header, max_tokens field")
    finally:
        fake.close()
    rc, out, err = kiln(["llm", "ping", "--llm", "openai:gpt-5", "--prices", "/nonexistent/p.json"])
    check(rc == 3 and "p.json" in err, "bad --prices file: exit 3 naming it (%d %s)" % (rc, err.strip()))


def test_cli_usage_and_config():
    rc, out, err = kiln(["llm"])
    check(rc == 2, "kiln llm without subcommand: exit 2")
    rc, out, err = kiln(["llm", "ping", "--repeat", "x"])
    check(rc == 2, "kiln llm ping --repeat x: exit 2")
    env = base_env()
    del env["OPENAI_API_KEY"]
    rc, out, err = kiln(["llm", "ping", "--llm", "openai:gpt-5"], env)
    check(rc == 3 and "OPENAI_API_KEY" in err, "no key: exit 3 naming the variable (%s)" % err.strip())
    rc, out, err = kiln(["llm", "ping", "--llm", "nosuch:model"])
    check(rc == 3 and "unknown provider" in err, "unknown provider: exit 3")
    fake = Fake({"replies": [], "default": {"text": "pong"}})
    try:
        rc, out, err = kiln(["llm", "ping", "--llm", "anthropic:claude-sonnet-4-5", "--base-url", fake.url])
        check(rc == 0 and "reply:    pong" in out and "cost:     $" in out and "attempt" in out,
              "human ping output (%s)" % out)
        env = base_env(KILN_LLM="openai:gpt-5", KILN_OPENAI_BASE_URL=fake.url)
        rc, out, err = kiln(["doctor"], env)
        check("llm:" in out and "OPENAI_API_KEY" in out and fake.url in out,
              "doctor reports the LLM configuration (%s)" % out)
        rc, out, err = kiln(["llm", "ping"], env)
        check(rc == 0 and "pong" in out, "ping with KILN_LLM + KILN_OPENAI_BASE_URL from the environment")
    finally:
        fake.close()


def test_fake_script_match():
    """The fake server's own contract (the search's end-to-end test relies on it)."""
    fake = Fake({"replies": [{"match": "Initialise", "text": "A"}, {"text": "B"}], "default": {"text": "D"}})
    try:
        got = []
        for prompt in ("plain one", "Initialise the world model", "plain two"):
            rc, out, err = kiln(["llm", "ping", "--json", "--llm", "openai:gpt-5", "--base-url", fake.url,
                                 "--prompt", prompt])
            got.append(json.loads(out.splitlines()[0])["text"] if out.strip() else None)
        check(got == ["B", "A", "D"], "fake server: match first, then in order, then default (%r)" % got)
        entries = [r["entry"] for r in fake.requests()]
        check(entries == [1, 0, "default"], "fake server: log names the entry served (%r)" % entries)
    finally:
        fake.close()


def grep_tree(root, needle):
    hits = []
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            try:
                with open(p, "rb") as fh:
                    if needle.encode() in fh.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


def test_key_leak():
    wd = os.path.join(TMP, "leak-wd")
    echo = {"error": {"message": "Incorrect API key provided: {{api_key}}", "type": "invalid_request_error",
                      "code": "invalid_api_key"}}
    outputs = []
    for spec, key in (("openai:gpt-5", KEY), ("anthropic:claude-sonnet-4-5", AKEY)):
        fake = Fake([{"text": "your key is {{api_key}}"}, {"status": 401, "body": echo}])
        try:
            for extra in ([], ["--json"]):
                rc, out, err = kiln(["llm", "ping", "--llm", spec, "--base-url", fake.url, "--record",
                                     "--workdir", wd] + extra)
                outputs += [out, err]
            rc, out, err = kiln(["doctor"], base_env(KILN_LLM=spec))
            outputs += [out, err]
            check(any("[redacted]" in o for o in outputs), "%s: echoed key shown as [redacted]" % spec)
            check(key in json.dumps(fake.requests()), "%s: the key did reach the server (sanity)" % spec)
        finally:
            fake.close()
        for o in outputs:
            check(key not in o, "%s: key absent from kiln's stdout/stderr" % spec)
        check(not grep_tree(wd, key), "%s: key absent from the work dir (%r)" % (spec, grep_tree(wd, key)))
    db = os.path.join(wd, "history.db")
    check(os.path.exists(db), "ping --record wrote history.db")
    try:
        import sqlite3
        con = sqlite3.connect(db)
        rows = con.execute("SELECT provider, status, purpose, prompt, reply, error FROM llm_calls").fetchall()
        con.close()
        check(len(rows) == 4 and rows[0][2] == "ping", "4 llm_calls rows recorded (%d)" % len(rows))
        check(all(KEY not in json.dumps(r) and AKEY not in json.dumps(r) for r in rows), "no key in llm_calls")
    except ImportError:
        pass


def main():
    if not KILN or not os.path.exists(KILN):
        print("integ_llm: KILN_BIN not set or missing")
        return 77
    tests = [test_basic_openai, test_basic_anthropic, test_retry_statuses, test_no_retry_statuses,
             test_retry_after, test_exhausted_and_refused, test_hang_timeout, test_garbage_and_drop,
             test_error_after_200, test_truncation, test_reply_cap, test_streaming, test_breaker, test_compatible_and_prices,
             test_cli_usage_and_config, test_fake_script_match, test_key_leak]
    only = sys.argv[1:]
    try:
        for t in tests:
            if only and t.__name__ not in only:
                continue
            t0 = time.time()
            before = len(failures)
            t()
            print("%s %s (%.1f s)" % ("ok  " if len(failures) == before else "FAIL", t.__name__, time.time() - t0))
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print("integ_llm: %d checks, %d failed" % (count, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
