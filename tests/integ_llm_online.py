#!/usr/bin/env python3
"""Online (suite 'online'): one real call to a real provider through `kiln llm ping`, both
non-streamed and streamed, when KILN_LLM or OPENAI_API_KEY / ANTHROPIC_API_KEY is set; exit 77
(skipped) otherwise. Checks status ok, a non-empty answer, token counts, a cost for a priced
model, and that the key appears nowhere in kiln's output."""
import json
import os
import subprocess
import sys

KILN = os.environ.get("KILN_BIN")
keys = [os.environ.get(k, "") for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")]
if not KILN or not (os.environ.get("KILN_LLM") or any(keys)):
    print("llm_online: no KILN_LLM, OPENAI_API_KEY or ANTHROPIC_API_KEY: skipped")
    sys.exit(77)
fail = 0
for extra in ([], ["--stream"]):
    r = subprocess.run([KILN, "llm", "ping", "--json", "--max-tokens", "2048", "--timeout", "120",
                        "--retries", "2"] + extra, capture_output=True, text=True, timeout=600)
    both = r.stdout + r.stderr
    if any(k and len(k) >= 8 and k in both for k in keys):
        print("FAIL: the API key appears in kiln's output")
        fail = 1
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    c = json.loads(lines[0]) if lines else {}
    print("llm_online %s: %s" % (extra, {k: c.get(k) for k in ("provider", "model", "status", "attempts",
          "latency_s", "prompt_tokens", "cached_tokens", "completion_tokens", "cost_usd", "error")}))
    if r.returncode != 0 or c.get("status") != "ok" or not c.get("text") or not c.get("completion_tokens"):
        print("FAIL: ping %s exited %d: %s" % (extra, r.returncode, r.stderr.strip()))
        fail = 1
sys.exit(fail)
