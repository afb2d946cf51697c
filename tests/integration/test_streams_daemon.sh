#!/usr/bin/env bash
# test_streams_daemon.sh: the event streams in the real daemon (`switchboard serve --demo`, the
# "streams" subsystem): API tokens subscribe, stream tokens open SSE and long-poll, scope and
# roles hold, a demo call reaches the agent's stream, Last-Event-ID resumes, and SIGTERM with a
# stream open still exits cleanly. Env: SB_BIN (build dir). Bounded by `timeout`; what it starts
# is killed.
set -u

SB="${SB_BIN:?SB_BIN must name the build directory}/switchboard"
TMP=$(mktemp -d /tmp/sb_streams.XXXXXX)
PIDS=()
FAILS=0
CHECKS=0

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); }
fail() {
    CHECKS=$((CHECKS + 1))
    FAILS=$((FAILS + 1))
    echo "FAIL: $*"
}
check() {
    local what=$1
    shift
    if "$@"; then ok; else fail "$what"; fi
}
tok() { timeout 20 "$SB" token create --store "$DB" "$@" 2>/dev/null; }

DB="$TMP/store.db"
SUP=$(tok --role supervisor)
A502=$(tok --role agent --extension 502)
A501=$(tok --role agent --extension 501)
SVC=$(tok --role service)
check "tokens created" test ${#SUP} = 43 -a ${#A502} = 43 -a ${#A501} = 43 -a ${#SVC} = 43

cat >"$TMP/sb.conf" <<CONF
[http]
port = 0
[store]
path = $DB
CONF
"$SB" serve -c "$TMP/sb.conf" --demo >"$TMP/serve.out" 2>"$TMP/serve.err" &
PIDS+=($!)
PORT=""
for i in $(seq 1 50); do
    PORT=$(sed -n 's/.*API listening on port \([0-9]*\).*/\1/p' "$TMP/serve.err" | head -1)
    [ -n "$PORT" ] && break
    sleep 0.1
done
check "serve reports its API port" test -n "$PORT"
URL="http://127.0.0.1:$PORT"
code() { curl -s -m 5 -o "$TMP/body" -w '%{http_code}' "$@"; }
field() { python3 -c "import json,sys; print(json.load(open('$TMP/body'))$1)"; }

# Who may subscribe.
check "no token: 401" test "$(code -X POST "$URL/v1/agents/502/subscriptions")" = 401
check "another agent: 403" \
    test "$(code -X POST -H "Authorization: Bearer $A501" "$URL/v1/agents/502/subscriptions")" = 403
check "agent on the supervisor stream: 403" \
    test "$(code -X POST -H "Authorization: Bearer $A502" "$URL/v1/subscriptions")" = 403
check "service subscribes an agent: 201" \
    test "$(code -X POST -H "Authorization: Bearer $SVC" -d '{"queues":["sales"]}' \
        "$URL/v1/agents/502/subscriptions")" = 201
check "own agent: 201" \
    test "$(code -X POST -H "Authorization: Bearer $A502" "$URL/v1/agents/502/subscriptions")" = 201
T502=$(field '["token"]')
SSE=$(field '["urls"]["sse"]')
check "the answer names the SSE URL" test "$SSE" = "/v1/agents/502/stream?token=$T502"
check "supervisor: 201" \
    test "$(code -X POST -H "Authorization: Bearer $SUP" "$URL/v1/subscriptions")" = 201
TSUP=$(field '["token"]')

# Scope of stream tokens.
check "502's token on 501's stream: 403" \
    test "$(code "$URL/v1/agents/501/stream/poll?token=$T502&timeout=0")" = 403
check "unknown stream token: 401" \
    test "$(code "$URL/v1/agents/502/stream/poll?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&timeout=0")" = 401
check "long-poll without after: the snapshot" \
    test "$(code "$URL/v1/agents/502/stream/poll?token=$T502")" = 200
check "snapshot event" grep -q '"type":"snapshot"' "$TMP/body"

# SSE: the snapshot, then a demo call reaching agent 502 (the demo plays calls by itself; give
# it a queue call too through the simulator's scenario on the control path: the demo's own load).
timeout 5 curl -s -N "$URL$SSE" >"$TMP/sse1" 2>/dev/null &
SSEPID=$!
timeout 5 curl -s -N "$URL/v1/stream?token=$TSUP" >"$TMP/sup" 2>/dev/null &
SUPPID=$!
wait $SSEPID
wait $SUPPID
check "agent SSE starts with the snapshot" bash -c "sed -n 2p '$TMP/sse1' | grep -q '\"type\":\"snapshot\"'"
check "agent SSE ids are seqs" grep -q '^id: [0-9]' "$TMP/sse1"
check "supervisor SSE got the snapshot" grep -q '"type":"snapshot"' "$TMP/sup"
check "supervisor SSE got call events" grep -q '"type":"call\.' "$TMP/sup"
NEV=$(grep -c '^data: ' "$TMP/sse1")
check "agent SSE got events after the snapshot ($NEV)" test "$NEV" -gt 1

# Resume with Last-Event-ID: the first event is the one after it, no snapshot.
LAST=$(grep '^id: ' "$TMP/sse1" | tail -1 | cut -d' ' -f2)
timeout 3 curl -s -N -H "Last-Event-ID: $LAST" "$URL$SSE" >"$TMP/sse2" 2>/dev/null
FIRST=$(grep '^id: ' "$TMP/sse2" | head -1 | cut -d' ' -f2)
check "resume has no snapshot" bash -c "! grep -q '\"type\":\"snapshot\"' '$TMP/sse2'"
check "resume continues at $LAST + 1 (got $FIRST)" test "$FIRST" = "$((LAST + 1))"

# A stream open while the daemon stops.
timeout 10 curl -s -N "$URL$SSE" >"$TMP/sse3" 2>/dev/null &
sleep 0.5
kill -TERM "${PIDS[0]}"
wait "${PIDS[0]}"
RC=$?
PIDS=()
check "serve exits 0 on SIGTERM with a stream open (got $RC)" test "$RC" = 0
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$TMP/serve.err'"

echo "test_streams_daemon.sh: $CHECKS checks, $FAILS failed"
[ "$FAILS" = 0 ]
