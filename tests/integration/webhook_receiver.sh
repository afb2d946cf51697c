#!/usr/bin/env bash
# webhook_receiver.sh: the standalone receiver (tests/integration/receiver.py) used by chaos and
# benchmark scripts: signature check with an HMAC computed by openssl (the recipe of
# docs/sinks.md), ids appended to --out for single and batch bodies, fault modes switched at run
# time (500, 429 + Retry-After, close), stats.
set -euo pipefail
SRC=${SB_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || { echo "python3 missing: skipped"; exit 0; }
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
secret=s3cr3t
python3 "$SRC/tests/integration/receiver.py" --secret "$secret" --out "$tmp/ids" >"$tmp/port" &
pid=$!
for _ in $(seq 50); do grep -q PORT "$tmp/port" 2>/dev/null && break; sleep 0.1; done
port=$(awk '/PORT/{print $2}' "$tmp/port")
url="http://127.0.0.1:$port/hook"
passed=0 failed=0
check() {
    if [ "$2" = "$3" ]; then echo "ok: $1"; passed=$((passed + 1))
    else echo "FAIL: $1: got '$2', want '$3'"; failed=$((failed + 1)); fi
}

post() { # body [timestamp] [secret] -> prints the status
    local body=$1 ts=${2:-$(date +%s)} key=${3:-$secret} sig
    sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$key" | awk '{print $NF}')
    curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -H "X-Switchboard-Timestamp: $ts" -H "X-Switchboard-Signature: v1=$sig" \
        --data-binary "$body" "$url"
}

check "signed single event" "$(post '{"id":"ev-1","type":"call.started"}')" 200
check "signed batch" "$(post '[{"id":"ev-2"},{"id":"ev-3"}]')" 200
check "wrong secret" "$(post '{"id":"ev-x"}' "" other)" 401
check "stale timestamp" "$(post '{"id":"ev-y"}' $(( $(date +%s) - 3600 )))" 401
curl -s -o /dev/null --data-binary 500 "http://127.0.0.1:$port/_mode"
check "mode 500" "$(post '{"id":"ev-z"}')" 500
curl -s -o /dev/null --data-binary 429 "http://127.0.0.1:$port/_mode"
check "mode 429" "$(curl -s -D - -o /dev/null --data-binary '{}' "$url" | tr -d '\r' | awk -F': ' '/^Retry-After/{print $2}')" 1
curl -s -o /dev/null --data-binary close "http://127.0.0.1:$port/_mode"
check "mode close" "$(curl -s -o /dev/null -w '%{http_code}' --data-binary '{}' "$url" || true)" 000
curl -s -o /dev/null --data-binary ok "http://127.0.0.1:$port/_mode"
check "ids recorded" "$(tr '\n' ' ' <"$tmp/ids")" "ev-1 ev-2 ev-3 "
check "stats" "$(curl -s "http://127.0.0.1:$port/_stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["accepted_events"], d["bad_signature"])')" "3 2"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
