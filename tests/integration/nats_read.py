#!/usr/bin/env python3
"""nats_read.py: prints the "id" of every message of a JetStream stream, in stream order, one per
line, for the chaos test (no client library needed: the NATS text protocol over a socket).

It asks the stream's message count ($JS.API.STREAM.INFO), creates an ephemeral push consumer
(deliver all, no acks) and reads until it has that many messages. Bounded by --timeout.
Usage: nats_read.py --port N --stream NAME [--timeout SECONDS]
"""
import argparse
import json
import socket
import sys
import time


class Conn:
    def __init__(self, port, deadline):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.pos = 0  # parse position in buf (no copy per message)
        self.deadline = deadline
        self.early = []  # (sid, payload) read by request() for another subscription
        self.readline()  # INFO
        self.send(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\n')

    def send(self, data):
        self.sock.sendall(data)

    def fill(self):
        # A quiet spell (the server's idle heartbeat is 5 s) is not an error: only the deadline is.
        while True:
            if time.time() > self.deadline:
                raise TimeoutError("nats_read: timed out")
            self.sock.settimeout(max(0.1, min(1, self.deadline - time.time())))
            try:
                chunk = self.sock.recv(1 << 20)
                break
            except socket.timeout:
                continue
        if not chunk:
            raise ConnectionError("nats_read: connection closed")
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0

    def readline(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self.fill()

    def readn(self, n):
        while len(self.buf) - self.pos < n + 2:
            self.fill()
        data = self.buf[self.pos:self.pos + n]
        self.pos += n + 2
        return data

    def next_msg(self):
        """(sid, payload) of the next MSG/HMSG; answers PINGs and JetStream flow-control requests,
        skips +OK. A push consumer's messages keep their original subject: the subscription id
        tells them apart."""
        if self.early:
            return self.early.pop(0)
        while True:
            line = self.readline()
            if line == b"PING":
                self.send(b"PONG\r\n")
                continue
            if line in (b"PONG", b"+OK") or not line:
                continue
            if line.startswith(b"-ERR"):
                raise ConnectionError(line.decode())
            parts = line.split()
            if parts[0] == b"MSG":
                data = self.readn(int(parts[-1]))
                return parts[2].decode(), data
            if parts[0] == b"HMSG":
                total, hdr = int(parts[-1]), int(parts[-2])
                data = self.readn(total)
                if data.startswith(b"NATS/1.0 100"):  # heartbeat or flow control
                    if len(parts) == 6:  # a flow-control request: answer its reply subject
                        self.send(b"PUB %s 0\r\n\r\n" % parts[3])
                    # A heartbeat after a missed flow-control answer names where to answer.
                    for h in data[:hdr].split(b"\r\n"):
                        if h.lower().startswith(b"nats-consumer-stalled:"):
                            self.send(b"PUB %s 0\r\n\r\n" % h.split(b":", 1)[1].strip())
                    continue
                return parts[2].decode(), data[hdr:]

    def request(self, subject, body, inbox, sid):
        """Publishes body and returns the JSON answer on sid. Messages of other subscriptions that
        arrive first (a new consumer may deliver before its create request is answered) are kept
        for next_msg, not dropped."""
        payload = json.dumps(body).encode()
        self.send(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), inbox.encode(), len(payload), payload))
        held = []
        while True:
            got, data = self.next_msg()
            if got == sid:
                self.early = held + self.early
                return json.loads(data)
            held.append((got, data))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    c = Conn(a.port, time.time() + a.timeout)
    c.send(b"SUB _chaos.reply 1\r\nSUB _chaos.deliver 2\r\n")
    info = c.request("$JS.API.STREAM.INFO." + a.stream, {}, "_chaos.reply", "1")
    if "error" in info:
        print(f"nats_read: {info['error']}", file=sys.stderr)
        return 1
    want = info["state"]["messages"]
    cfg = {"stream_name": a.stream,
           "config": {"deliver_subject": "_chaos.deliver", "ack_policy": "none",
                      "deliver_policy": "all", "replay_policy": "instant", "mem_storage": True,
                      "flow_control": True, "idle_heartbeat": 5 * 10**9,
                      "inactive_threshold": 60 * 10**9}}
    if want:
        made = c.request("$JS.API.CONSUMER.CREATE." + a.stream, cfg, "_chaos.reply", "1")
        if "error" in made:
            print(f"nats_read: {made['error']}", file=sys.stderr)
            return 1
    got = 0
    out = []
    while got < want:
        try:
            sid, data = c.next_msg()
        except TimeoutError:
            print(f"nats_read: timed out with {got} of {want} messages", file=sys.stderr)
            return 1
        if sid != "2" or not data:
            continue
        got += 1
        out.append(str(json.loads(data).get("id")))
    sys.stdout.write("".join(i + "\n" for i in out))
    print(f"nats_read: {got} messages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
