#!/usr/bin/env bash
# e2e.sh: the web console end to end (issue 3 §4): starts `switchboard serve --demo` (the
# simulator plays a call every 4 s, queue calls first) with the HTTP API on an ephemeral port,
# the console from SB_SRC/web and a fresh store, creates an agent token (extension 502, who takes
# the simulator's queue calls) and a supervisor token with `switchboard token create`, then runs
# tests/e2e/run.mjs: Playwright (npm playwright-core) driving Debian's headless Chromium.
# Screenshots of each view are left in $SB_BIN/e2e-artifacts/ (with the daemon's log).
# Env: SB_BIN (build dir with ./switchboard), SB_SRC (source dir). Needs node, npm and
# /usr/bin/chromium (or SB_CHROMIUM); runs `npm ci` when node_modules lacks playwright-core.
# Everything is bounded by `timeout`; whatever this script starts is killed on exit.
set -u

SB="${SB_BIN:?SB_BIN must name the build directory}/switchboard"
SRC="${SB_SRC:?SB_SRC must name the source directory}"
ART="$SB_BIN/e2e-artifacts"
CHROMIUM="${SB_CHROMIUM:-/usr/bin/chromium}"
TMP=$(mktemp -d /tmp/sb_e2e.XXXXXX)
DAEMON=""

cleanup() {
    if [ -f "$TMP/daemon2.pid" ]; then
        kill "$(cat "$TMP/daemon2.pid")" 2>/dev/null
        sleep 0.5
        kill -9 "$(cat "$TMP/daemon2.pid")" 2>/dev/null
    fi
    if [ -n "$DAEMON" ]; then
        kill "$DAEMON" 2>/dev/null
        # SIGTERM stops the daemon cleanly; give it a few seconds, then insist.
        for _ in $(seq 1 50); do
            kill -0 "$DAEMON" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$DAEMON" 2>/dev/null
        wait "$DAEMON" 2>/dev/null
    fi
    [ -f "$TMP/daemon.log" ] && cp "$TMP/daemon.log" "$ART/daemon.log" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

die() {
    echo "e2e: $*" >&2
    exit 1
}

[ -x "$SB" ] || die "no $SB (build it first)"
command -v node >/dev/null || die "node is not installed (apt-get install -y nodejs npm)"
[ -x "$CHROMIUM" ] || die "no $CHROMIUM (apt-get install -y chromium)"
mkdir -p "$ART" || die "cannot create $ART"
rm -f "$ART"/*.png "$ART/daemon.log"

# ---- node_modules: playwright-core from package-lock.json ---------------------------------------
if [ ! -f "$SRC/node_modules/playwright-core/package.json" ]; then
    echo "e2e: node_modules lacks playwright-core: npm ci"
    (cd "$SRC" && timeout 300 npm ci --no-audit --no-fund) || die "npm ci failed"
fi

# ---- the daemon --------------------------------------------------------------------------------
cat >"$TMP/switchboard.conf" <<EOF
[store]
path = $TMP/switchboard.db

[http]
bind = 127.0.0.1
port = 0
web_root = $SRC/web
EOF

AGENT_TOKEN=$(timeout 20 "$SB" token create -c "$TMP/switchboard.conf" --role agent --extension 502 --name e2e-agent 2>"$TMP/tok.err" | tail -n 1)
SUP_TOKEN=$(timeout 20 "$SB" token create -c "$TMP/switchboard.conf" --role supervisor --name e2e-supervisor 2>>"$TMP/tok.err" | tail -n 1)
[ -n "$AGENT_TOKEN" ] && [ -n "$SUP_TOKEN" ] || die "switchboard token create failed: $(head -3 "$TMP/tok.err")"

START_MS=$(date +%s%3N)
"$SB" serve -c "$TMP/switchboard.conf" --demo --log-level info >"$TMP/daemon.log" 2>&1 &
DAEMON=$!

PORT=""
for _ in $(seq 1 100); do
    PORT=$(sed -n 's/.*API listening on port \([0-9][0-9]*\).*/\1/p' "$TMP/daemon.log" | head -n 1)
    [ -n "$PORT" ] && break
    kill -0 "$DAEMON" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$PORT" ]; then
    echo "e2e: the daemon did not report its HTTP port; its log:" >&2
    tail -20 "$TMP/daemon.log" >&2
    exit 1
fi
echo "e2e: daemon pid $DAEMON, console at http://127.0.0.1:$PORT/"

# run.mjs restarts the daemon once (same port, same store): this config pins the port.
sed "s/^port = 0$/port = $PORT/" "$TMP/switchboard.conf" >"$TMP/restart.conf"

# ---- the browser test ----------------------------------------------------------------------------
SB_URL="http://127.0.0.1:$PORT/" SB_AGENT_TOKEN="$AGENT_TOKEN" SB_AGENT_EXT=502 \
    SB_SUP_TOKEN="$SUP_TOKEN" SB_ARTIFACTS="$ART" SB_CHROMIUM="$CHROMIUM" SB_DAEMON_START_MS="$START_MS" \
    SB_DAEMON_PID="$DAEMON" SB_SWITCHBOARD="$SB" SB_RESTART_CONF="$TMP/restart.conf" \
    SB_RESTART_PIDFILE="$TMP/daemon2.pid" SB_RESTART_LOG="$TMP/daemon2.log" \
    timeout 420 node "$SRC/tests/e2e/run.mjs"
RC=$?

RESTARTED=""
[ -f "$TMP/daemon2.pid" ] && RESTARTED=1
if [ -n "$RESTARTED" ]; then
    # run.mjs stopped the first daemon (SIGTERM) and started a second: the first must have
    # exited 0, and the second is stopped and checked below like the first would have been.
    wait "$DAEMON"
    DRC=$?
    if [ "$DRC" -ne 0 ]; then
        echo "e2e: the first daemon exited with status $DRC after SIGTERM" >&2
        RC=1
    fi
    DAEMON2=$(cat "$TMP/daemon2.pid")
    DAEMON=""
    kill "$DAEMON2" 2>/dev/null
    for _ in $(seq 1 100); do
        kill -0 "$DAEMON2" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$DAEMON2" 2>/dev/null; then
        echo "e2e: the restarted daemon did not stop within 10 s of SIGTERM" >&2
        kill -9 "$DAEMON2" 2>/dev/null
        RC=1
    else
        rm -f "$TMP/daemon2.pid"
        if ! grep -q 'stopped cleanly' "$TMP/daemon2.log"; then
            echo "e2e: the restarted daemon did not stop cleanly" >&2
            tail -5 "$TMP/daemon2.log" >&2
            RC=1
        fi
    fi
    cat "$TMP/daemon2.log" >>"$TMP/daemon.log"
elif kill -0 "$DAEMON" 2>/dev/null; then
    # Stop it as an operator would: SIGTERM, exit status 0, and (in sanitizer builds) no report.
    kill "$DAEMON"
    STOPPED=""
    for _ in $(seq 1 100); do
        kill -0 "$DAEMON" 2>/dev/null || { STOPPED=1; break; }
        sleep 0.1
    done
    if [ -z "$STOPPED" ]; then
        echo "e2e: the daemon did not stop within 10 s of SIGTERM" >&2
        RC=1
    else
        wait "$DAEMON"
        DRC=$?
        DAEMON=""
        if [ "$DRC" -ne 0 ]; then
            echo "e2e: the daemon exited with status $DRC after SIGTERM" >&2
            RC=1
        fi
    fi
else
    echo "e2e: the daemon died during the test; its log:" >&2
    tail -20 "$TMP/daemon.log" >&2
    RC=1
fi
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP/daemon.log"; then
    echo "e2e: sanitizer report in the daemon's log:" >&2
    grep -A12 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$TMP/daemon.log" | head -40 >&2
    RC=1
fi
if [ "$RC" -ne 0 ]; then
    echo "e2e: FAILED (exit $RC); daemon log tail:"
    grep -v ' debug ' "$TMP/daemon.log" | tail -15
fi
exit "$RC"
