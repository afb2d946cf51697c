#!/usr/bin/env python3
"""receiver.py: a standalone webhook receiver for integration, chaos and benchmark scripts.

Listens on 127.0.0.1 (port 0 by default: the chosen port is printed as "PORT <n>" on stdout),
verifies the X-Switchboard-Signature of every request when --secret is given (401 when it does
not verify), and appends the id of every event it accepts to --out, one per line (single events
and batch arrays alike), so a script can check afterwards that every event arrived.

Its behaviour can be changed while it runs, for fault injection:
    POST /_mode   body: ok | 500 | 429 | stall | close   (429 answers carry Retry-After: 1)
    GET  /_stats  JSON counts: requests, accepted_events, rejected, bad_signature, mode
Usage: receiver.py [--port N] [--secret S | --secret-file F] [--out FILE] [--mode MODE]
"""
import argparse
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"mode": "ok", "requests": 0, "accepted_events": 0, "rejected": 0, "bad_signature": 0}
LOCK = threading.Lock()
OUT = None
SECRET = None


def event_ids(body):
    """Ids of the events in a single-event or batch body."""
    doc = json.loads(body)
    events = doc if isinstance(doc, list) else doc.get("events", [doc]) if isinstance(doc, dict) else []
    return [str(e.get("id")) for e in events if isinstance(e, dict) and "id" in e]


def signature_ok(headers, body):
    ts = headers.get("X-Switchboard-Timestamp", "")
    sig = headers.get("X-Switchboard-Signature", "")
    want = "v1=" + hmac.new(SECRET, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(sig, want) and ts.isdigit() and abs(time.time() - int(ts)) <= 300


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def answer(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_stats":
            with LOCK:
                body = json.dumps(STATE).encode()
            return self.answer(200, body, {"Content-Type": "application/json"})
        return self.answer(404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n) if n else b""
        if self.path == "/_mode":
            with LOCK:
                STATE["mode"] = body.decode().strip() or "ok"
            return self.answer(204)
        with LOCK:
            STATE["requests"] += 1
            mode = STATE["mode"]
        if mode == "500":
            return self.answer(500, b"down for maintenance")
        if mode == "429":
            return self.answer(429, b"slow down", {"Retry-After": "1"})
        if mode == "stall":
            time.sleep(3600)
            return None
        if mode == "close":
            self.close_connection = True
            self.connection.close()
            return None
        if SECRET is not None and not signature_ok(self.headers, body):
            with LOCK:
                STATE["bad_signature"] += 1
            return self.answer(401, b"bad signature")
        try:
            ids = event_ids(body)
        except (ValueError, AttributeError):
            with LOCK:
                STATE["rejected"] += 1
            return self.answer(400, b"not JSON")
        with LOCK:
            STATE["accepted_events"] += len(ids)
            if OUT:
                OUT.write("".join(i + "\n" for i in ids))
                OUT.flush()
        return self.answer(200, b"ok")


def main():
    global OUT, SECRET
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--secret")
    ap.add_argument("--secret-file")
    ap.add_argument("--out")
    ap.add_argument("--mode", default="ok")
    a = ap.parse_args()
    if a.secret_file:
        with open(a.secret_file, encoding="utf-8") as f:
            SECRET = f.readline().rstrip("\r\n").encode()
    elif a.secret:
        SECRET = a.secret.encode()
    if a.out:
        OUT = open(a.out, "a", encoding="utf-8")
    STATE["mode"] = a.mode
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
