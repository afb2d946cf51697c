#!/usr/bin/env bash
# api_cli.sh: `switchboard token create|list|revoke` and `serve --demo` serving the API with
# them: a token is printed once and works at once, the store never holds it, bad input is a
# one-line usage error (exit 2), revoking works across processes, and the API listens where the
# configuration says. Env: SB_BIN (build dir). Bounded by `timeout`; what it starts is killed.
set -u

SB="${SB_BIN:?SB_BIN must name the build directory}/switchboard"
TMP=$(mktemp -d /tmp/sb_api_cli.XXXXXX)
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
# run EXPECTED_EXIT CMD...: output in $TMP/out and $TMP/err
run() {
    local want=$1
    shift
    timeout 20 "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ "$rc" = "$want" ]; then ok; else fail "exit $rc (wanted $want): $*: $(head -c 300 "$TMP/err")"; fi
}

DB="$TMP/store.db"
run 0 "$SB" token create --store "$DB" --role admin --name ops
ADMIN=$(cat "$TMP/out")
check "a token is 43 base64url characters" bash -c "[[ '$ADMIN' =~ ^[A-Za-z0-9_-]{43}\$ ]]"
check "creation says the token is shown once" grep -q 'shown only this once' "$TMP/err"
run 0 "$SB" token create --store "$DB" --role agent --extension 1001
AGENT=$(cat "$TMP/out")
run 0 "$SB" token create --store "$DB" --role service --name crm
SVC=$(cat "$TMP/out")
check "tokens differ" test "$ADMIN" != "$AGENT"

run 2 "$SB" token create --store "$DB" --role root
check "bad role: one line" test "$(wc -l <"$TMP/err")" = 1
run 2 "$SB" token create --store "$DB" --role agent
check "agent without extension is explained" grep -q -- '--extension' "$TMP/err"
run 2 "$SB" token create --store "$DB" --role admin --extension 1001
run 2 "$SB" token create --store "$DB"
run 2 "$SB" token frobnicate --store "$DB"
run 2 "$SB" token revoke --store "$DB" abc
run 0 "$SB" token --help
check "help names the roles" grep -q 'admin, supervisor, agent' "$TMP/out"

run 0 "$SB" token list --store "$DB"
check "list shows 3 tokens and a header" test "$(wc -l <"$TMP/out")" = 4
check "list shows the agent's extension" grep -q '^2 *agent *1001' "$TMP/out"
check "list never shows a token" bash -c "! grep -qF '$ADMIN' '$TMP/out'"
check "the store never holds a token" bash -c "! grep -qaF '$ADMIN' '$DB'"
run 0 "$SB" token list --store "$DB" --json
check "json list: 3 objects" test "$(grep -c '^{"id":' "$TMP/out")" = 3

# The daemon with the simulator, on an ephemeral port, with that store.
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
code() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }
check "no token: 401" test "$(code "$URL/v1/pbxs")" = 401
check "admin token: 200" test "$(code -H "Authorization: Bearer $ADMIN" "$URL/v1/pbxs")" = 200
check "pbxs lists the demo" grep -q '"name":"demo"' "$TMP/body"
check "agent token on pbxs: 403" test "$(code -H "Authorization: Bearer $AGENT" "$URL/v1/pbxs")" = 403
check "openapi served" test "$(code -H "Authorization: Bearer $AGENT" "$URL/v1/openapi.json")" = 200
check "openapi is 3.1" grep -q '"openapi":"3.1.0"' "$TMP/body"
check "service token: 200" test "$(code -H "Authorization: Bearer $SVC" "$URL/v1/calls")" = 200

# A token created while the daemon runs works within about a second; a revoked one stops.
run 0 "$SB" token create --store "$DB" --role supervisor
SUP=$(cat "$TMP/out")
got=""
for i in $(seq 1 40); do
    got=$(code -H "Authorization: Bearer $SUP" "$URL/v1/queues")
    [ "$got" = 200 ] && break
    sleep 0.1
done
check "a new token works while the daemon runs (got $got)" test "$got" = 200
run 0 "$SB" token revoke --store "$DB" 3
run 1 "$SB" token revoke --store "$DB" 3
for i in $(seq 1 40); do
    got=$(code -H "Authorization: Bearer $SVC" "$URL/v1/calls")
    [ "$got" = 401 ] && break
    sleep 0.1
done
check "a revoked token is refused (got $got)" test "$got" = 401
run 0 "$SB" token list --store "$DB" --all
check "list --all marks the revoked token" grep -q '^3 .*revoked' "$TMP/out"

# A changed [http] on SIGHUP is reported as needing a restart; the API keeps serving.
cat >"$TMP/sb.conf" <<CONF
[http]
port = 0
max_body_bytes = 2m
[store]
path = $DB
CONF
kill -HUP "${PIDS[0]}"
for i in $(seq 1 50); do
    grep -q 'changed: the change takes effect when the daemon restarts' "$TMP/serve.err" && break
    sleep 0.1
done
check "a changed [http] is reported on SIGHUP" grep -q '\[http\] changed' "$TMP/serve.err"
check "the API still serves after the reload" \
    test "$(code -H "Authorization: Bearer $ADMIN" "$URL/v1/pbxs")" = 200

kill -TERM "${PIDS[0]}"
wait "${PIDS[0]}"
RC=$?
PIDS=()
check "serve exits 0 on SIGTERM (got $RC)" test "$RC" = 0
check "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$TMP/serve.err'"

echo "api_cli.sh: $CHECKS checks, $FAILS failed"
[ "$FAILS" = 0 ]
