#!/usr/bin/env python3
"""fake_llm.py: a scripted LLM server for kiln's tests (python3 stdlib only).

A real HTTP/1.1 server on 127.0.0.1 with a port chosen by the OS. It serves OpenAI Chat
Completions (POST /v1/chat/completions, or any path ending in /chat/completions) and
Anthropic Messages (POST /v1/messages, any path ending in /messages) from a JSON script,
and logs every request it receives.

    python3 tests/fake_llm.py --script S.json --log requests.jsonl [--port-file F] [--delay S]

It prints the port on the first line of stdout (and writes it to --port-file, atomically),
then serves until SIGTERM/SIGINT. Base URL for kiln: http://127.0.0.1:PORT/v1

Script: a JSON list of reply entries, or {"replies": [...], "default": ENTRY}.
Choosing the entry for a request:
  1. the first unused entry whose "match" string occurs in the request: in its raw JSON
     body or in the decoded text of its system prompt and messages,
  2. else the first unused entry without "match",
  3. else "default" (served any number of times),
  4. else HTTP 500 {"error": {"message": "fake_llm: script exhausted"}}.
An entry with "path" only serves requests whose path ends with it.

Entry fields (all optional):
  match        substring of the request body that selects this entry (see above)
  path         e.g. "/v1/messages"
  times        how many requests it serves (default 1; -1 = forever)
  delay        seconds to wait before answering
  status       HTTP status (default 200)
  headers      {"retry-after": "1", ...} extra response headers
  body         JSON value (sent serialized) or a string (sent as is)
  text         the answer: the server builds the API's own reply for the request's path,
               as an SSE stream when the request has "stream": true (else one JSON body)
  finish       "stop" (default) or "length": finish_reason / stop_reason (max_tokens);
               any other string is sent as is
  usage        {"prompt": P, "completion": C, "cached": R, "cache_write": W, "reasoning": X}
               (P counts all input tokens; for Anthropic input_tokens = P - R - W), or the
               API's native usage object (has prompt_tokens / input_tokens): sent as is
  id           response id (default "fake-N")
  chunk_delay  seconds between generated stream events
  sse          explicit stream: [{"event": NAME, "data": JSON|STRING, "delay": S},
               {"comment": TEXT}, {"raw": "bytes as is"}], sent chunked as text/event-stream
  edits        [[SEARCH, REPLACE], ...]: the answer is an edit reply, these search/replace
               blocks in one ```edit block (kiln applies them to the kernel its prompt quoted)
  diff         a unified diff of kernel.cu: the answer is an edit reply with a ```diff block
  changed      with edits/diff: a "CHANGED: ..." line before the block (omitted if absent)
  launch       with edits/diff: a launch plan (JSON value) sent in a ```json block too
  fault        "hang"        accept and never answer (holds the socket "hang_s", default 30)
               "drop"        a stream closes after "drop_after" events (default 2) without its
                             end marker; a plain body closes half-way (short Content-Length)
               "garbage"     200 with a body that is not JSON
               "truncated"   same as text with finish "length" (text default "partial")
               "429"         429 rate_limit_error with retry-after: "retry_after" (default 1)
               "quota"       429 insufficient_quota (must not be retried)
               "529"         Anthropic's 529 overloaded_error
In body, text and sse strings "{{api_key}}" becomes the key the request carried (for the
key-leak tests) and "{{n}}" the request's sequence number.

--delay S: every reply waits S seconds first (added to an entry's own delay): a model that
thinks, for the tests of concurrent calls. Requests are served concurrently (a thread each).

Log: one JSON object per request, in arrival order:
  {"n": 1, "t": EPOCH_S, "method": "POST", "path": "/v1/messages", "headers": {lowercase
   name: value}, "body": parsed JSON or the raw string, "entry": INDEX | "default" | null}
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STOP = threading.Event()


class Script:
    def __init__(self, data):
        if isinstance(data, list):
            data = {"replies": data}
        self.entries = [dict(e) for e in data.get("replies", [])]
        for e in self.entries:
            e["_left"] = e.get("times", 1)
        self.default = data.get("default")
        self.lock = threading.Lock()
        self.n = 0
        self.log_lock = threading.Lock()

    def pick(self, path, body):
        with self.lock:
            self.n += 1
            n = self.n
            def usable(e):
                return e["_left"] != 0 and path.endswith(e.get("path", ""))
            for want_match in (True, False):
                for i, e in enumerate(self.entries):
                    if not usable(e) or ("match" in e) != want_match:
                        continue
                    if want_match and e["match"] not in body:
                        continue
                    if e["_left"] > 0:
                        e["_left"] -= 1
                    return n, i, e
            if self.default is not None:
                return n, "default", self.default
            return n, None, None


def texts_of(value):
    """Every string inside a decoded request (system prompt, message contents, blocks)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in texts_of(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in texts_of(v)]
    return []


def subst(value, key, n):
    if isinstance(value, str):
        return value.replace("{{api_key}}", key).replace("{{n}}", str(n))
    if isinstance(value, list):
        return [subst(v, key, n) for v in value]
    if isinstance(value, dict):
        return {k: subst(v, key, n) for k, v in value.items()}
    return value


def native_usage(u, anthropic):
    u = u or {}
    if "prompt_tokens" in u or "input_tokens" in u:
        return u
    p, c = u.get("prompt", 10), u.get("completion", 5)
    r, w = u.get("cached", 0), u.get("cache_write", 0)
    if anthropic:
        return {"input_tokens": p - r - w, "cache_read_input_tokens": r,
                "cache_creation_input_tokens": w, "output_tokens": c}
    out = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
           "prompt_tokens_details": {"cached_tokens": r}}
    if "reasoning" in u:
        out["completion_tokens_details"] = {"reasoning_tokens": u["reasoning"]}
    return out


def finish_reason(entry, anthropic):
    f = entry.get("finish", "stop")
    if f == "stop":
        return "end_turn" if anthropic else "stop"
    if f == "length":
        return "max_tokens" if anthropic else "length"
    return f


def pieces(text, k=3):
    if not text:
        return [""]
    step = max(1, (len(text) + k - 1) // k)
    return [text[i:i + step] for i in range(0, len(text), step)]


def answer_body(entry, anthropic, rid, text):
    usage = native_usage(entry.get("usage"), anthropic)
    fin = finish_reason(entry, anthropic)
    if anthropic:
        return {"id": rid, "type": "message", "role": "assistant", "model": "fake",
                "content": [{"type": "text", "text": text}], "stop_reason": fin,
                "stop_sequence": None, "usage": usage}
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                 "refusal": None}, "finish_reason": fin}],
            "usage": usage}


def answer_events(entry, anthropic, rid, text, include_usage):
    usage = native_usage(entry.get("usage"), anthropic)
    fin = finish_reason(entry, anthropic)
    ev = []
    if anthropic:
        start_usage = dict(usage)
        start_usage["output_tokens"] = 1
        ev.append({"event": "message_start", "data": {"type": "message_start", "message": {
            "id": rid, "type": "message", "role": "assistant", "model": "fake", "content": [],
            "stop_reason": None, "usage": start_usage}}})
        ev.append({"event": "content_block_start", "data": {
            "type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}})
        ev.append({"event": "ping", "data": {"type": "ping"}})
        for p in pieces(text):
            ev.append({"event": "content_block_delta", "data": {
                "type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}})
        ev.append({"event": "content_block_stop", "data": {"type": "content_block_stop", "index": 0}})
        ev.append({"event": "message_delta", "data": {
            "type": "message_delta", "delta": {"stop_reason": fin, "stop_sequence": None},
            "usage": {"output_tokens": usage.get("output_tokens", 0)}}})
        ev.append({"event": "message_stop", "data": {"type": "message_stop"}})
        return ev
    def chunk(delta, fr=None):
        return {"data": {"id": rid, "object": "chat.completion.chunk", "model": "fake",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": fr}]}}
    ev.append(chunk({"role": "assistant", "content": ""}))
    for p in pieces(text):
        ev.append(chunk({"content": p}))
    ev.append(chunk({}, fin))
    if include_usage:
        ev.append({"data": {"id": rid, "object": "chat.completion.chunk", "model": "fake",
                            "choices": [], "usage": usage}})
    ev.append({"data": "[DONE]"})
    return ev


def edit_text(entry):
    """An edit reply: the CHANGED line, the ```edit (or ```diff) block, an optional plan."""
    out = []
    if entry.get("changed"):
        out.append("CHANGED: %s\n" % entry["changed"])
    if "edits" in entry:
        blocks = "".join("<<<<<<< SEARCH\n%s=======\n%s>>>>>>> REPLACE\n" % (a, b) for a, b in entry["edits"])
        out.append("```edit\n%s```\n" % blocks)
    else:
        out.append("```diff\n%s```\n" % entry["diff"])
    if "launch" in entry:
        out.append("```json\n%s\n```\n" % json.dumps(entry["launch"]))
    return "\n".join(out)


def error_body(kind):
    if kind == "429":
        return {"error": {"message": "Rate limit reached for requests", "type": "rate_limit_error",
                          "code": "rate_limit_exceeded"}}
    if kind == "quota":
        return {"error": {"message": "You exceeded your current quota, please check your plan "
                          "and billing details.", "type": "insufficient_quota",
                          "code": "insufficient_quota"}}
    return {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake_llm/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def do_GET(self):
        self.send_plain(200, b"ok\n", "text/plain")

    def do_POST(self):
        n_bytes = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n_bytes).decode("utf-8", "replace") if n_bytes else ""
        script = self.server.script
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        n, idx, entry = script.pick(self.path, raw + "\n" + "\n".join(texts_of(body)))
        rec = {"n": n, "t": time.time(), "method": "POST", "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
               "entry": idx}
        with script.log_lock:
            with open(self.server.log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        if entry is None:
            return self.send_json(500, {"error": {"message": "fake_llm: script exhausted",
                                                  "type": "server_error"}})
        auth = self.headers.get("authorization", "")
        key = auth[7:] if auth.lower().startswith("bearer ") else self.headers.get("x-api-key", "")
        entry = subst(entry, key, n)
        try:
            self.serve(entry, body if isinstance(body, dict) else {}, n)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ---- responses ----
    def send_plain(self, status, data, ctype, headers=None, length=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def send_json(self, status, obj, headers=None):
        self.send_plain(status, json.dumps(obj).encode(), "application/json", headers)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def drop(self):
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(2)
        except OSError:
            pass

    def hang(self, seconds):
        end = time.time() + seconds
        while time.time() < end and not STOP.is_set():
            time.sleep(0.05)
        self.drop()

    def stream(self, entry, events):
        self.send_response(entry.get("status", 200))
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in entry.get("headers", {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        drop_after = entry.get("drop_after", 2) if entry.get("fault") == "drop" else None
        gap = entry.get("chunk_delay", 0)
        for i, ev in enumerate(events):
            if drop_after is not None and i >= drop_after:
                return self.drop()
            time.sleep(ev.get("delay", gap))
            if "raw" in ev:
                data = ev["raw"]
            elif "comment" in ev:
                data = ": %s\n\n" % ev["comment"]
            else:
                d = ev.get("data", "")
                d = d if isinstance(d, str) else json.dumps(d)
                data = ("event: %s\n" % ev["event"] if ev.get("event") else "")
                data += "".join("data: %s\n" % line for line in d.split("\n")) + "\n"
            self.chunk(data.encode())
        if drop_after is not None:
            return self.drop()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def serve(self, entry, req, n):
        time.sleep(entry.get("delay", 0) + self.server.delay)
        fault = entry.get("fault")
        anthropic = self.path.endswith("/messages")
        headers = dict(entry.get("headers", {}))
        if fault == "hang":
            return self.hang(entry.get("hang_s", 30))
        if fault in ("429", "quota", "529"):
            status = 529 if fault == "529" else 429
            if fault == "429":
                headers.setdefault("retry-after", str(entry.get("retry_after", 1)))
            return self.send_json(status, error_body(fault), headers)
        if fault == "garbage":
            return self.send_plain(200, b'{"choices": [ {"mess', "application/json", headers)
        if "edits" in entry or "diff" in entry:
            entry = dict(entry, text=edit_text(entry))
        if fault == "truncated":
            entry = dict(entry, finish="length", text=entry.get("text", "partial"))
        if "sse" in entry:
            return self.stream(entry, entry["sse"])
        rid = entry.get("id", "fake-%d" % n)
        if "text" in entry:
            if req.get("stream") and not entry.get("no_stream"):
                inc = anthropic or bool((req.get("stream_options") or {}).get("include_usage"))
                return self.stream(entry, answer_events(entry, anthropic, rid, entry["text"], inc))
            body = answer_body(entry, anthropic, rid, entry["text"])
        else:
            body = entry.get("body", {})
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        status = entry.get("status", 200)
        if fault == "drop":
            self.send_plain(status, data[: len(data) // 2], "application/json", headers, len(data))
            return self.drop()
        self.send_plain(status, data, "application/json", headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that gives up mid-stream (as kiln does after an error event) is normal
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--script", required=True, help="JSON script of replies")
    ap.add_argument("--log", required=True, help="JSONL request log (appended)")
    ap.add_argument("--port-file", help="write the port here too")
    ap.add_argument("--delay", type=float, default=0, help="seconds every reply waits first")
    a = ap.parse_args()
    with open(a.script) as f:
        script = Script(json.load(f))
    srv = Server(("127.0.0.1", 0), Handler)
    srv.script = script
    srv.log_path = a.log
    srv.delay = a.delay
    open(a.log, "a").close()
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.port_file)
    print(port, flush=True)

    def stop(*_):
        STOP.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
