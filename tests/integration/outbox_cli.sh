#!/usr/bin/env bash
# outbox_cli.sh: the delivery subsystem and `switchboard outbox status|retry|replay` end to end,
# against the standalone receiver (receiver.py):
#   - a receiver answering 500 turns 50 events into dead letters (max_attempts = 2);
#   - the store over [store] size_warn raises an `alert` event, delivered by a second sink that
#     subscribes to type alert (log line + event);
#   - `outbox status` shows the dead letters; `outbox retry` marks them, and the restarted daemon
#     delivers all 50;
#   - `outbox replay --from 1h` (daemon stopped) delivers them again after a restart;
#   - usage errors: one line, exit 2; unknown sink: exit 1.
# Events come from the daemon's test-only synthetic source (SWITCHBOARD_SYNTHETIC_EVENTS).
set -euo pipefail
SRC=${SB_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${SB_BIN:-$SRC/build}
SB="$BIN/switchboard"
command -v python3 >/dev/null || { echo "python3 missing: skipped"; exit 0; }
tmp=$(mktemp -d /tmp/sb-outbox-cli.XXXXXX)
rcv_pid="" sb_pid=""
cleanup() {
    for p in $sb_pid $rcv_pid; do kill -9 "$p" 2>/dev/null || true; done
    for p in $sb_pid $rcv_pid; do wait "$p" 2>/dev/null || true; done
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
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
