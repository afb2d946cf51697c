#!/usr/bin/env python3
"""chaos_check.py: helpers of the chaos test (chaos.sh).

  chaos_check.py expected N                 the ids the synthetic source emits (src/app/delivery.c:
                                            50 calls at a time, 5 events each, interleaved)
  chaos_check.py s3 DIR BUCKET OUT_IDS      event ids of every NDJSON object s3rver stored under
                                            DIR/BUCKET, objects in key order (= delivery order),
                                            written to OUT_IDS; prints the number of CDR objects
  chaos_check.py check N NAME IDS_FILE      compares what a receiver holds with the emitted set:
                                            every id at least once, nothing else, and the first
                                            copy of each call's events in the call's order. Prints
                                            one line of counts; exit status 1 on a mismatch.
  chaos_check.py checkdb DB NAME IDS_FILE   the same against the set the outbox committed (the
                                            store's events table, in seq order, calls by call_key):
                                            for events from the simulator, whose set is not known
                                            in advance
  chaos_check.py dbinfo DB                  prints "EVENTS CALLS_ENDED" of the store
"""
import json
import os
import sqlite3
import sys

CONCURRENT = 50  # APP_SYNTHETIC_CONCURRENT
PER_CALL = 5     # APP_SYNTHETIC_PER_CALL


def synthetic_id(j):
    block = CONCURRENT * PER_CALL
    r = j % block
    call = (j // block) * CONCURRENT + r % CONCURRENT
    return f"syn-{call:08d}-{r // CONCURRENT}"


def expected(n):
    return [synthetic_id(j) for j in range(n)]


def s3(root, bucket, out):
    base = os.path.join(root, bucket)
    objs, cdrs = [], 0
    for d, _, files in os.walk(base):
        for f in files:
            if not f.endswith("._S3rver_object"):
                continue
            key = os.path.relpath(os.path.join(d, f[: -len("._S3rver_object")]), base)
            if "/cdr/" in "/" + key:
                cdrs += 1
            elif key.endswith(".ndjson"):
                objs.append((key, os.path.join(d, f)))
    with open(out, "w", encoding="utf-8") as o:
        for _, path in sorted(objs):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        o.write(str(json.loads(line).get("id")) + "\n")
    print(f"{len(objs)} {cdrs}")
    return 0


def db_events(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT id, call_key, type FROM events ORDER BY seq").fetchall()
    finally:
        con.close()


def compare(name, want, call_of, path):
    """want: ids in emission order; call_of: id -> call. Prints counts; 0 when all is well."""
    want_set = set(want)
    with open(path, encoding="utf-8") as f:
        got = [line.strip() for line in f if line.strip()]
    seen, first = set(), []
    for i in got:
        if i not in seen:
            seen.add(i)
            first.append(i)
    missing = len(want_set - seen)
    unexpected = len(seen - want_set)
    # each call's first copies must come in the call's emission order
    rank = {i: n for n, i in enumerate(want)}
    last, order_bad = {}, 0
    for i in first:
        if i not in want_set:
            continue
        c = call_of(i)
        if last.get(c, -1) > rank[i]:
            order_bad += 1
        last[c] = rank[i]
    ok = missing == 0 and unexpected == 0 and order_bad == 0
    print(f"{name:8s} received {len(got):7d}  unique {len(seen):7d}  duplicates "
          f"{len(got) - len(seen):6d}  missing {missing:6d}  unexpected {unexpected:4d}  "
          f"out-of-order {order_bad:4d}  {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


def check(n, name, path):
    return compare(name, expected(n), lambda i: i.split("-")[1], path)


def checkdb(db, name, path):
    rows = db_events(db)
    calls = {r[0]: r[1] for r in rows}
    return compare(name, [r[0] for r in rows], lambda i: calls[i], path)


def dbinfo(db):
    rows = db_events(db)
    ended = {r[1] for r in rows if r[2] == "call.ended" and r[1]}
    print(f"{len(rows)} {len(ended)}")
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "expected":
        sys.stdout.write("".join(i + "\n" for i in expected(int(argv[1]))))
        return 0
    if len(argv) == 4 and argv[0] == "s3":
        return s3(argv[1], argv[2], argv[3])
    if len(argv) == 4 and argv[0] == "check":
        return check(int(argv[1]), argv[2], argv[3])
    if len(argv) == 4 and argv[0] == "checkdb":
        return checkdb(argv[1], argv[2], argv[3])
    if len(argv) == 2 and argv[0] == "dbinfo":
        return dbinfo(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
