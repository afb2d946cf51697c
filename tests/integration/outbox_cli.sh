#!/usr/bin/env bash
# outbox_cli.sh: the delivery subsystem and `switchboard outbox status|retry|replay` end to end,
# against the standalone receiver (receiver.py):
#   - a receiver answering 500 turns 50 events into dead letters (max_attempts = 2);
#   - the store over [store] size_warn raises an `alert` event, delivered by a second sink that
#     subscribes to type alert (log line + event);
#   - `outbox status` shows the dead letters; `outbox retry` marks them, and the restarted daemon
#     delivers all 50;
#   - `outbox replay --from 1h` (daemon stopped) delivers them again after a restart;
#   - usage errors: one line, exit 2; unknown sink: exit 1;
#   - with the daemon RUNNING (a second store and receiver): a second `serve` on the store is
#     refused; `outbox retry` and `outbox replay` go to the daemon, which delivers without a
#     restart; an unknown sink is the daemon's error; a daemon that never answers (the lock held
#     by flock(1)) makes the CLI cancel its request after --wait; the /v1/outbox routes: roles,
#     unknown sink 404, bad from 400, replay in progress 409, success answers.
# Events come from the daemon's test-only synthetic source (SWITCHBOARD_SYNTHETIC_EVENTS).
set -euo pipefail
SRC=${SB_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${SB_BIN:-$SRC/build}
SB="$BIN/switchboard"
command -v python3 >/dev/null || { echo "python3 missing: skipped"; exit 0; }
tmp=$(mktemp -d /tmp/sb-outbox-cli.XXXXXX)
rcv_pid="" sb_pid="" rcv2_pid="" flock_pid=""
cleanup() {
    for p in $sb_pid $rcv_pid $rcv2_pid $flock_pid; do kill -9 "$p" 2>/dev/null || true; done
    for p in $sb_pid $rcv_pid $rcv2_pid $flock_pid; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
passed=0 failed=0
check() {
    if [ "$2" = "$3" ]; then echo "ok: $1"; passed=$((passed + 1))
    else echo "FAIL: $1: got '$2', want '$3'"; failed=$((failed + 1)); fi
}
wait_for() { # description, command...: polls at most 20 s
    local what=$1; shift
    for _ in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "FAIL: timed out waiting for $what"; failed=$((failed + 1)); return 1
}

python3 "$SRC/tests/integration/receiver.py" --mode 500 --out "$tmp/ids" >"$tmp/port" 2>"$tmp/rcv.log" &
rcv_pid=$!
for _ in $(seq 100); do grep -q PORT "$tmp/port" 2>/dev/null && break; sleep 0.1; done
port=$(awk '/PORT/{print $2}' "$tmp/port")
mode() { curl -s -o /dev/null --data-binary "$1" "http://127.0.0.1:$port/_mode"; }

cat >"$tmp/sb.conf" <<EOF
[http]
port = 0
[store]
path = $tmp/sb.db
size_warn = 4K
prune_interval = 1s
[sink hook]
kind = webhook
url = http://127.0.0.1:$port/hook
pbxs = synthetic
max_attempts = 2
backoff_base = 50ms
backoff_max = 100ms
timeout = 2s
[sink alerts]
kind = webhook
url = http://127.0.0.1:$port/alerts
types = alert
max_attempts = 100000
backoff_base = 100ms
backoff_max = 500ms
EOF
start_sb() {
    SWITCHBOARD_SYNTHETIC_EVENTS=50@1000 "$SB" serve -c "$tmp/sb.conf" --log-level info \
        >>"$tmp/sb.log" 2>&1 &
    sb_pid=$!
}
stop_sb() {
    kill -TERM "$sb_pid"
    local code=0
    wait "$sb_pid" || code=$?
    sb_pid=""
    check "clean stop" "$code" 0
}
field() { # sink key
    "$SB" outbox status --store "$tmp/sb.db" --sink "$1" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}
syn_unique() { grep '^syn-' "$tmp/ids" 2>/dev/null | sort -u | wc -l; }
syn_total() { grep -c '^syn-' "$tmp/ids" 2>/dev/null || true; }
hook_dead_is_50() { [ "$(field hook dead 2>/dev/null)" = 50 ]; }
syn_unique_is_50() { [ "$(syn_unique)" = 50 ]; }
syn_total_at_least() { [ "$(syn_total)" -ge "$1" ]; }

# 1. receiver down (500): dead letters; the size alert waits in its own sink
start_sb
wait_for "50 dead letters" hook_dead_is_50 || true
check "dead letters after max_attempts" "$(field hook dead)" 50
check "cursor moved past the dead letters" "$(field hook cursor)" "$(field hook lastSeq)"
check "nothing accepted while down" "$(syn_total)" 0
mode ok
wait_for "the alert event" grep -q -- '-alert-' "$tmp/ids" || true
check "alert event delivered" "$(grep -c -- '-alert-' "$tmp/ids" | awk '{print ($1 >= 1)}')" 1
check "alert logged" "$(grep -c 'over size_warn' "$tmp/sb.log" | awk '{print ($1 >= 1)}')" 1
check "no synthetic event retried by itself" "$(syn_total)" 0
# the built-in simulator (demo mode: no [pbx]) plays a call: its events reach the bus too
wait_for "a simulated call" grep -q 'demo: event Hangup' "$tmp/sb.log" || true
sleep 0.5
stop_sb

# Only events some sink wants are stored: the 50 synthetic ones and the alert events, not the
# built-in simulator's calls (demo mode: no [pbx] configured), which no sink's filter takes.
alerts=$(grep -- '-alert-' "$tmp/ids" | sort -u | wc -l)
check "only wanted events stored" "$(field hook lastSeq)" "$((50 + alerts))"

# 2. status, retry
st=$("$SB" outbox status --store "$tmp/sb.db")
check "status lists both sinks" "$(printf '%s\n' "$st" | awk 'NR>1{print $1}' | sort | tr '\n' ' ')" "alerts hook "
check "status text dead column" "$(printf '%s\n' "$st" | awk '$1=="hook"{print $6}')" 50
out=$("$SB" outbox retry --store "$tmp/sb.db" --sink hook)
check "retry count" "$(printf '%s' "$out" | awk '{print $3}')" 50
start_sb
wait_for "50 retried events" syn_unique_is_50 || true
check "retried dead letters delivered" "$(syn_unique)" 50
check "no dead letters left" "$(field hook dead)" 0
stop_sb

# 3. replay (daemon stopped)
before=$(syn_total)
out=$("$SB" outbox replay --store "$tmp/sb.db" --sink hook --from 1h)
check "replay moved the cursor back" "$(printf '%s' "$out" | grep -c 'cursor moved back to 0')" 1
start_sb
wait_for "replayed events" syn_total_at_least $((before + 50)) || true
check "replay delivered every event again" "$(( $(syn_total) - before ))" 50
stop_sb

# 4. usage
code=0; "$SB" outbox >/dev/null 2>"$tmp/err" || code=$?
check "no command: exit 2" "$code" 2
check "no command: one line" "$(wc -l <"$tmp/err")" 1
code=0; "$SB" outbox replay --store "$tmp/sb.db" --sink hook 2>/dev/null || code=$?
check "replay without --from: exit 2" "$code" 2
code=0; "$SB" outbox retry --store "$tmp/sb.db" --sink hook --from yesterday 2>/dev/null || code=$?
check "bad --from: exit 2" "$code" 2
code=0; "$SB" outbox status --store "$tmp/sb.db" --sink nope 2>"$tmp/err" || code=$?
check "unknown sink: exit 1" "$code" 1
check "unknown sink: named" "$(grep -c "no sink 'nope'" "$tmp/err")" 1
code=0; "$SB" outbox --help >"$tmp/help" || code=$?
check "help: exit 0" "$code" 0
check "help names replay" "$(grep -c 'replay --sink S --from TIME' "$tmp/help")" 1
code=0; "$SB" outbox retry --store "$tmp/sb.db" --sink hook --wait 0 2>/dev/null || code=$?
check "bad --wait: exit 2" "$code" 2

# 5. the daemon running: a second store, its own receiver
python3 "$SRC/tests/integration/receiver.py" --mode 500 --out "$tmp/ids2" >"$tmp/port2" 2>"$tmp/rcv2.log" &
rcv2_pid=$!
for _ in $(seq 100); do grep -q PORT "$tmp/port2" 2>/dev/null && break; sleep 0.1; done
port2=$(awk '/PORT/{print $2}' "$tmp/port2")
mode2() { curl -s -o /dev/null --data-binary "$1" "http://127.0.0.1:$port2/_mode"; }
db2="$tmp/sb2.db"
cat >"$tmp/sb2.conf" <<EOF
[http]
port = 0
[store]
path = $db2
[sink hook]
kind = webhook
url = http://127.0.0.1:$port2/hook
pbxs = synthetic
max_attempts = 2
backoff_base = 50ms
backoff_max = 100ms
timeout = 2s
EOF
"$SB" token create --store "$db2" --role admin --name ops >"$tmp/tok_admin" 2>/dev/null
"$SB" token create --store "$db2" --role supervisor --name sup >"$tmp/tok_sup" 2>/dev/null
admin=$(cat "$tmp/tok_admin") sup=$(cat "$tmp/tok_sup")
SWITCHBOARD_SYNTHETIC_EVENTS=50@1000 "$SB" serve -c "$tmp/sb2.conf" --log-level info \
    >"$tmp/sb2.log" 2>&1 &
sb_pid=$!
field2() { "$SB" outbox status --store "$db2" --sink hook --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
syn2_unique() { grep '^syn-' "$tmp/ids2" 2>/dev/null | sort -u | wc -l; }
syn2_total() { grep -c '^syn-' "$tmp/ids2" 2>/dev/null || true; }
dead2_is_50() { [ "$(field2 dead 2>/dev/null)" = 50 ]; }
syn2_unique_is_50() { [ "$(syn2_unique)" = 50 ]; }
syn2_total_at_least() { [ "$(syn2_total)" -ge "$1" ]; }
wait_for "50 dead letters (running)" dead2_is_50 || true
check "running: dead letters" "$(field2 dead)" 50
api_port=$(sed -n 's/.*API listening on port \([0-9]*\).*/\1/p' "$tmp/sb2.log" | head -1)
api() { # method path token [body]: prints "STATUS BODY"
    local out
    out=$(curl -s -o "$tmp/api.body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $3" \
        ${4:+-H 'Content-Type: application/json' --data-binary "$4"} "http://127.0.0.1:$api_port$2")
    echo "$out $(cat "$tmp/api.body")"
}
jget() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read().split(" ",1)[1]); print(eval(sys.argv[1]))' "$1"; }

# one daemon per store
code=0; timeout 20 "$SB" serve -c "$tmp/sb2.conf" >"$tmp/second.log" 2>&1 || code=$?
check "second serve on the store: exit 1" "$code" 1
check "second serve says why" "$(grep -c 'already running on the store' "$tmp/second.log")" 1
check "first daemon still running" "$(kill -0 "$sb_pid" 2>/dev/null && echo yes)" yes

# the API while the receiver still fails
r=$(api GET /v1/outbox "$admin")
check "GET /v1/outbox: 200" "${r%% *}" 200
check "GET /v1/outbox: the sink's dead letters" "$(echo "$r" | jget '[s["dead"] for s in d["sinks"] if s["name"]=="hook"][0]')" 50
check "GET /v1/outbox: thresholds" "$(echo "$r" | jget 'd["maxBytes"] > d["warnBytes"] > 0 and d["overWarn"] is False')" True
check "GET /v1/outbox: supervisor 403" "$(api GET /v1/outbox "$sup" | cut -d' ' -f1)" 403
check "GET /v1/outbox: bad token 401" "$(api GET /v1/outbox bogus | cut -d' ' -f1)" 401
check "POST retry: supervisor 403" "$(api POST /v1/outbox/sinks/hook/retry "$sup" | cut -d' ' -f1)" 403
check "POST replay: supervisor 403" "$(api POST /v1/outbox/sinks/hook/replay "$sup" '{"from":"1h"}' | cut -d' ' -f1)" 403
r=$(api POST /v1/outbox/sinks/nope/retry "$admin")
check "POST retry unknown sink: 404" "${r%% *}" 404
check "POST retry unknown sink: code" "$(echo "$r" | jget 'd["error"]["code"]')" unknown_sink
check "POST replay unknown sink: 404" "$(api POST /v1/outbox/sinks/nope/replay "$admin" '{"from":"1h"}' | cut -d' ' -f1)" 404
r=$(api POST /v1/outbox/sinks/hook/replay "$admin" '{"from":"yesterday"}')
check "POST replay bad from: 400" "${r%% *}" 400
check "POST replay bad from: code" "$(echo "$r" | jget 'd["error"]["code"]')" bad_from
check "POST replay without from: 400" "$(api POST /v1/outbox/sinks/hook/replay "$admin" | cut -d' ' -f1)" 400
check "POST retry bad from: 400" "$(api POST /v1/outbox/sinks/hook/retry "$admin" '{"from":12}' | cut -d' ' -f1)" 400
check "still 50 dead letters" "$(field2 dead)" 50

# the receiver is fixed: retry with the daemon running, no restart
mode2 ok
t0=$(date +%s%N)
code=0; out=$("$SB" outbox retry --store "$db2" --sink hook 2>"$tmp/err") || code=$?
t1=$(date +%s%N)
check "running retry: exit 0" "$code" 0
check "running retry: count" "$(printf '%s' "$out" | awk '{print $3}')" 50
check "running retry: done by the daemon" "$(printf '%s' "$out" | grep -c 'running daemon')" 1
echo "running retry answered in $(( (t1 - t0) / 1000000 )) ms"
wait_for "retried events (running)" syn2_unique_is_50 || true
check "running retry: every event delivered" "$(syn2_unique)" 50
check "running retry: no dead letter left" "$(field2 dead)" 0
check "running retry: same daemon" "$(kill -0 "$sb_pid" 2>/dev/null && echo yes)" yes

# replay with the daemon running
before=$(syn2_total)
code=0; out=$("$SB" outbox replay --store "$db2" --sink hook --from 1h 2>"$tmp/err") || code=$?
check "running replay: exit 0" "$code" 0
check "running replay: new cursor" "$(printf '%s' "$out" | grep -c 'cursor moved back to 0; the running daemon')" 1
wait_for "replayed events (running)" syn2_total_at_least $((before + 50)) || true
check "running replay: every event again" "$(( $(syn2_total) - before ))" 50

# an unknown sink is the daemon's answer
code=0; "$SB" outbox retry --store "$db2" --sink nope >/dev/null 2>"$tmp/err" || code=$?
check "running retry unknown sink: exit 1" "$code" 1
check "running retry unknown sink: the daemon says so" "$(grep -c "running daemon has no sink 'nope'" "$tmp/err")" 1

# the API's success answers
before=$(syn2_total)
r=$(api POST /v1/outbox/sinks/hook/replay "$admin" '{"from":"1h"}')
check "POST replay: 200" "${r%% *}" 200
check "POST replay: cursor" "$(echo "$r" | jget 'd["cursor"]')" 0
wait_for "replayed events (API)" syn2_total_at_least $((before + 50)) || true
check "POST replay: every event again" "$(( $(syn2_total) - before ))" 50
r=$(api POST /v1/outbox/sinks/hook/retry "$admin" '{"from":"2026-01-01T00:00:00Z"}')
check "POST retry: 200" "${r%% *}" 200
check "POST retry: nothing dead" "$(echo "$r" | jget 'd["retried"]')" 0

# 409: a replay waits for the batch in flight (stalled at the receiver); a second one is refused
mode2 stall
curl -s -o "$tmp/r1" -w '%{http_code}' -X POST -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' --data-binary '{"from":"1h"}' \
    "http://127.0.0.1:$api_port/v1/outbox/sinks/hook/replay" >"$tmp/r1.code"
sleep 0.5 # the redelivery's first batch is now stalled at the receiver
curl -s -o "$tmp/r2" -w '%{http_code}' -X POST -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' --data-binary '{"from":"1h"}' \
    "http://127.0.0.1:$api_port/v1/outbox/sinks/hook/replay" >"$tmp/r2.code" &
r2_pid=$!
sleep 0.3
r=$(api POST /v1/outbox/sinks/hook/replay "$admin" '{"from":"1h"}')
check "POST replay while one waits: 409" "${r%% *}" 409
check "POST replay while one waits: code" "$(echo "$r" | jget 'd["error"]["code"]')" replay_in_progress
mode2 ok
wait "$r2_pid" || true
check "the waiting replay answers once the batch is done" "$(cat "$tmp/r2.code")" 200
stop_sb

# stopped again: retry works on the store itself
code=0; out=$("$SB" outbox retry --store "$db2" --sink hook 2>/dev/null) || code=$?
check "stopped retry: exit 0" "$code" 0
check "stopped retry: offline" "$(printf '%s' "$out" | grep -c 'at its next start')" 1

# a daemon that never answers (its lock held by flock(1)): the request is canceled after --wait
if command -v flock >/dev/null; then
    flock "$db2.lock" sleep 30 &
    flock_pid=$!
    sleep 0.3
    code=0; "$SB" outbox retry --store "$db2" --sink hook --wait 1 2>"$tmp/err" || code=$?
    check "no answer: exit 1" "$code" 1
    check "no answer: canceled" "$(grep -c 'did not take the request within 1 s; it was canceled' "$tmp/err")" 1
    kill "$flock_pid" 2>/dev/null || true
    wait "$flock_pid" 2>/dev/null || true
fi
kill "$rcv2_pid" 2>/dev/null || true
wait "$rcv2_pid" 2>/dev/null || true

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
