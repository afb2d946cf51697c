#!/usr/bin/env bash
# cli.sh: the switchboard command line end to end: help texts, one-line errors with non-zero exits,
# `config check` masking secrets, `ami action` and `ami tail --json` against a running pbxsim
# program, `serve` reloading on SIGHUP and exiting 0 on SIGTERM, and no secret in any output.
# Env: SB_BIN (build dir with ./switchboard and ./pbxsim), SB_SRC (source dir).
# Everything is bounded by `timeout`; whatever this script starts is killed on exit.
set -u

SB="${SB_BIN:?SB_BIN must name the build directory}/switchboard"
SIM="$SB_BIN/pbxsim"
TMP=$(mktemp -d /tmp/sb_cli.XXXXXX)
PIDS=()
FAILS=0
CHECKS=0

cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); }
fail() {
    CHECKS=$((CHECKS + 1))
    FAILS=$((FAILS + 1))
    echo "FAIL: $*"
}
# check DESCRIPTION COMMAND...: the command must succeed
check() {
    local what=$1
    shift
    if "$@"; then ok; else fail "$what"; fi
}

# run EXPECTED_EXIT CMD...: runs with a 20 s bound, output in $TMP/out and $TMP/err.
run() {
    local want=$1
    shift
    timeout 20 "$@" >"$TMP/out" 2>"$TMP/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        fail "exit $got, expected $want: $*"
        sed 's/^/    stderr: /' "$TMP/err" | head -5
        return 1
    fi
    ok
    return 0
}

lines() { wc -l <"$1" | tr -d ' '; }

# ---- help texts -------------------------------------------------------------------------------
for cmd in "" "serve" "ami" "ami tail" "ami action" "config" "config check" "version"; do
    # shellcheck disable=SC2086
    run 0 "$SB" $cmd --help && check "'$cmd --help' prints usage" grep -q '^usage: switchboard' "$TMP/out"
done
run 0 "$SB" version && check "version line" grep -qE '^switchboard [0-9]+\.[0-9]+\.[0-9]+ ' "$TMP/out"

# ---- bad command lines: exit 2, exactly one line on stderr naming the problem, nothing on stdout
bad_line() {
    local needle=$1
    shift
    run 2 "$@" || return
    check "one stderr line for: $*" test "$(lines "$TMP/err")" = 1
    check "stderr names '$needle' for: $*" grep -qF -- "$needle" "$TMP/err"
    check "nothing on stdout for: $*" test ! -s "$TMP/out"
}
bad_line "--bogus" "$SB" serve --bogus
bad_line "--bogus" "$SB" ami tail --bogus
bad_line "--bogus" "$SB" ami action Ping --bogus
bad_line "--bogus" "$SB" config check --bogus
bad_line "--bogus" "$SB" --bogus
bad_line "frobnicate" "$SB" frobnicate
bad_line "frobnicate" "$SB" ami frobnicate
bad_line "--pbx" "$SB" ami tail --pbx
bad_line "--log-level" "$SB" serve --log-level loud
bad_line "missing the action NAME" "$SB" ami action
bad_line "not Key=Value" "$SB" ami action Ping NoEquals
bad_line "--count" "$SB" ami tail --count zero
bad_line "cannot open" "$SB" config check -c "$TMP/does-not-exist.conf"

# ---- configuration files ------------------------------------------------------------------------
SECRET_INLINE='inline-Secret-7f3a'
SECRET_FILE_VALUE='file-Secret-91bc'
SECRET_ENV_VALUE='env-Secret-22d0'
printf '%s\n' "$SECRET_FILE_VALUE" >"$TMP/ami.secret"
cat >"$TMP/good.conf" <<EOF
[general]
log_level = info

[pbx one]
host = 127.0.0.1
port = 5038
username = admin
secret = $SECRET_INLINE

[pbx two]
username = admin
secret_file = ami.secret
auth = md5
filter = Event: Newchannel, Event: Hangup

[pbx three]
username = admin
secret_env = SB_CLI_TEST_SECRET

[http]
listen = 127.0.0.1:8088
EOF
export SB_CLI_TEST_SECRET="$SECRET_ENV_VALUE"
run 0 "$SB" config check -c "$TMP/good.conf"
check "config check says OK" grep -q '^configuration OK$' "$TMP/out"
check "config check lists [pbx two] with md5 and 2 filters" grep -q '^\[pbx two\] .*auth=md5 .*filters=2' "$TMP/out"
check "config check masks secrets" grep -q 'secret=\*\*\*\*\*\*\*\* (env SB_CLI_TEST_SECRET)' "$TMP/out"
for s in "$SECRET_INLINE" "$SECRET_FILE_VALUE" "$SECRET_ENV_VALUE"; do
    check "config check never prints a secret" bash -c "! grep -qF -- '$s' '$TMP/out' '$TMP/err'"
done

cat >"$TMP/bad.conf" <<EOF
[pbx one]
username = admin
hots = 10.0.0.1
secret = $SECRET_INLINE
EOF
bad_line "bad.conf:3: [pbx one] unknown key 'hots'" "$SB" config check -c "$TMP/bad.conf"
check "a bad line never shows the secret" bash -c "! grep -qF -- '$SECRET_INLINE' '$TMP/err'"
# serve with a bad file: one error line, exit 1, no crash
run 1 "$SB" serve -c "$TMP/bad.conf"
check "serve names the bad line" grep -qF "bad.conf:3: [pbx one] unknown key 'hots'" "$TMP/err"
check "serve prints one line for a bad file" test "$(grep -c 'error' "$TMP/err")" = 1
run 1 "$SB" serve -c "$TMP/bad.conf" --log-json
check "--log-json: the error is one JSON log record" \
    grep -q '^{"time":.*"level": *"error".*bad.conf:3: \[pbx one\] unknown key' "$TMP/err"

# ---- against a running pbxsim -------------------------------------------------------------------
if [ ! -x "$SIM" ]; then
    echo "SKIP: $SIM not built: the pbxsim parts of this test did not run"
    echo "cli.sh: $CHECKS checks, $FAILS failed"
    [ "$FAILS" -eq 0 ]
    exit
fi

mkfifo "$TMP/sim.in"
# The simulator reads control commands on stdin; keep the fifo open for writing on fd 7.
"$SIM" --port 0 --time-scale 0.05 <"$TMP/sim.in" >"$TMP/sim.out" 2>"$TMP/sim.err" &
SIM_PID=$!
PIDS+=("$SIM_PID")
exec 7>"$TMP/sim.in"
PORT=""
for _ in $(seq 1 100); do
    PORT=$(sed -n '1s/^listening 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$TMP/sim.out")
    [ -n "$PORT" ] && break
    sleep 0.05
done
if [ -z "$PORT" ]; then
    fail "pbxsim did not print 'listening 127.0.0.1:PORT'"
    cat "$TMP/sim.err"
    echo "cli.sh: $CHECKS checks, $FAILS failed"
    exit 1
fi
ok

cat >"$TMP/sim.conf" <<EOF
[pbx sim]
host = 127.0.0.1
port = $PORT
username = admin
secret_env = SB_CLI_SIM_SECRET
connect_timeout = 3s

[http]
port = 0

[store]
path = $TMP/store.db
EOF
export SB_CLI_SIM_SECRET=admin-secret

run 0 "$SB" ami action Ping -c "$TMP/sim.conf"
check "Ping answers Success" grep -q '^Response: Success$' "$TMP/out"
check "Ping answers Pong" grep -q '^Ping: Pong$' "$TMP/out"
run 0 "$SB" ami action Ping -c "$TMP/sim.conf" --json
check "Ping --json is one JSON line with the pbx" grep -q '^{"Response": *"Success".*"pbx": *"sim"}$' "$TMP/out"
check "Ping --json: one line" test "$(lines "$TMP/out")" = 1
run 0 "$SB" ami action CoreShowChannels -c "$TMP/sim.conf"
check "list action ends with its Complete event" grep -q '^Event: CoreShowChannelsComplete$' "$TMP/out"
run 1 "$SB" ami action NoSuchAction -c "$TMP/sim.conf"
check "Error answer: one line on stderr" test "$(lines "$TMP/err")" = 1
check "Error answer names the message" grep -qi 'invalid/unknown command' "$TMP/err"

# Async Originate waits for its OriginateResponse; a busy destination is exit 1.
run 0 "$SB" ami action Originate Channel=Local/100@from-internal Context=hello Exten=s Priority=1 \
    Async=true -c "$TMP/sim.conf"
check "async Originate prints the OriginateResponse" grep -q '^Event: OriginateResponse$' "$TMP/out"
run 1 "$SB" ami action Originate Channel=Local/999@from-internal Context=hello Exten=s Priority=1 \
    Async=true -c "$TMP/sim.conf" --json
check "failed async Originate: one stderr line" test "$(lines "$TMP/err")" = 1
check "failed async Originate: says busy" grep -q 'Reason 5 (busy)' "$TMP/err"
check "failed async Originate: the OriginateResponse is printed" \
    grep -q '"Event": *"OriginateResponse".*"Response": *"Failure"' "$TMP/out"
# The text form of tail; debug logs of a one-shot command never show the secret.
run 0 "$SB" ami tail -c "$TMP/sim.conf" --count 1 --log-level debug
check "ami tail text form starts with Event:" grep -q '^Event: [A-Za-z]' "$TMP/out"
check "ami at debug level logs the login" grep -q 'logged in' "$TMP/err"
check "ami at debug level never logs the secret" bash -c "! grep -qF admin-secret '$TMP/err' '$TMP/out'"

# Tailing two PBXs: every event tagged with its PBX; one of them down is not fatal.
{
    cat "$TMP/sim.conf"
    printf '\n[pbx down]\nhost = 127.0.0.1\nport = 1\nusername = u\nsecret = s\n'
} >"$TMP/multi.conf"
run 0 "$SB" ami tail -c "$TMP/multi.conf" --count 2
check "multi-PBX tail tags the text form" grep -q '^Pbx: sim$' "$TMP/out"
check "multi-PBX tail reports the PBX that is down" grep -q 'pbx down: .*(retrying)' "$TMP/err"
run 0 "$SB" ami tail -c "$TMP/multi.conf" --pbx sim --count 1
check "--pbx picks one PBX (no Pbx: tag)" bash -c "! grep -q '^Pbx:' '$TMP/out'"
check "--pbx: the other PBX is not contacted" test ! -s "$TMP/err"
bad_line "no [pbx nope]" "$SB" ami tail -c "$TMP/multi.conf" --pbx nope

# MD5 login; a permission the manager user lacks is exit 1 with the message.
sed 's/^username = admin$/username = admin\nauth = md5/' "$TMP/sim.conf" >"$TMP/md5.conf"
run 0 "$SB" ami action Ping -c "$TMP/md5.conf"
check "Ping over an MD5 login" grep -q '^Ping: Pong$' "$TMP/out"
printf '[pbx limited]\nport = %s\nusername = limited\nsecret = limited-secret\n' "$PORT" >"$TMP/limited.conf"
run 1 "$SB" ami action Command Command=core\ show\ uptime -c "$TMP/limited.conf"
check "permission denied: one line naming it" grep -qi 'permission denied' "$TMP/err"

# A wrong secret: exit 3, one line, the secret never shown.
sed 's/^secret_env = .*/secret = Wrong-Secret-0a1b/' "$TMP/sim.conf" >"$TMP/wrong.conf"
run 3 "$SB" ami action Ping -c "$TMP/wrong.conf"
check "bad secret: one line" test "$(lines "$TMP/err")" = 1
check "bad secret: says authentication" grep -qi 'auth' "$TMP/err"
check "bad secret: secret not shown" bash -c "! grep -qF Wrong-Secret-0a1b '$TMP/err'"

# A closed port: exit 3.
sed "s/^port = .*/port = 1/" "$TMP/sim.conf" >"$TMP/closed.conf"
run 3 "$SB" ami action Ping -c "$TMP/closed.conf"
check "closed port: one line naming the PBX" grep -q "pbx sim: " "$TMP/err"

# ami tail --json: start it, make the simulator play calls, read 5 events.
timeout 20 "$SB" ami tail -c "$TMP/sim.conf" --json --count 5 >"$TMP/tail.out" 2>"$TMP/tail.err" &
TAIL_PID=$!
PIDS+=("$TAIL_PID")
for i in 1 2 3 4 5 6 7 8 9 10; do
    sleep 0.3
    [ "$(lines "$TMP/tail.out")" -ge 5 ] && break
    for s in $(ls "$SB_SRC/tools/pbxsim/scenarios" 2>/dev/null | sed -n 's/\.scn$//p' | head -3); do
        echo "play $s" >&7
    done
done
wait "$TAIL_PID"
TAIL_RC=$?
check "ami tail --count 5 exits 0 (got $TAIL_RC)" test "$TAIL_RC" = 0
check "ami tail printed 5 lines" test "$(lines "$TMP/tail.out")" = 5
check "every tail line is a JSON event tagged with the pbx" \
    bash -c "! grep -v '^{\"Event\": *\"[A-Za-z]*\".*\"pbx\": *\"sim\"}\$' '$TMP/tail.out'"

# ---- serve: reload on SIGHUP, clean exit on SIGTERM, secrets never logged -----------------------
cp "$TMP/sim.conf" "$TMP/serve.conf"
# Not under `timeout`: it would turn our SIGHUP into a SIGTERM for its child. The cleanup trap
# kills it, and every wait below is bounded.
"$SB" serve -c "$TMP/serve.conf" --log-level debug >"$TMP/serve.out" 2>"$TMP/serve.err" &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
wait_log() { # wait_log PATTERN [COUNT]: up to 5 s for COUNT lines matching
    local n=${2:-1}
    for _ in $(seq 1 100); do
        [ "$(grep -c -- "$1" "$TMP/serve.err")" -ge "$n" ] && return 0
        sleep 0.05
    done
    return 1
}
check "serve logs in to the simulator" wait_log 'pbx: sim: ready'
# Reload with a second PBX added.
cat >>"$TMP/serve.conf" <<EOF

[pbx sim2]
host = 127.0.0.1
port = $PORT
username = admin
secret = admin-secret
auth = md5
EOF
kill -HUP "$SERVE_PID"
check "SIGHUP reloads" wait_log 'config: reloaded'
check "the new PBX connects" wait_log 'pbx: sim2: ready'
# Change sim2 (the last section): only it reconnects.
echo "ping_interval = 5s" >>"$TMP/serve.conf"
kill -HUP "$SERVE_PID"
check "a changed PBX reconnects" wait_log 'pbx: sim2: configuration changed, reconnecting'
check "and logs in again" wait_log 'pbx: sim2: ready' 2
check "an unchanged PBX keeps its connection" test "$(grep -c 'pbx: sim: ready' "$TMP/serve.err")" = 1
# Reload with a broken file: one clear error, the old configuration stays.
echo "this is not ini" >>"$TMP/serve.conf"
kill -HUP "$SERVE_PID"
check "a bad reload is reported" wait_log 'reload failed, keeping the running configuration: .*serve.conf:[0-9]*: syntax error'
check "the daemon still runs after a bad reload" kill -0 "$SERVE_PID"
# Remove sim2 again.
cp "$TMP/sim.conf" "$TMP/serve.conf"
kill -HUP "$SERVE_PID"
check "a removed PBX disconnects" wait_log 'sim2: removed from the configuration'
kill -TERM "$SERVE_PID"
for _ in $(seq 1 100); do
    kill -0 "$SERVE_PID" 2>/dev/null || break
    sleep 0.05
done
check "serve stops within 5 s of SIGTERM" bash -c "! kill -0 $SERVE_PID 2>/dev/null"
kill -KILL "$SERVE_PID" 2>/dev/null
wait "$SERVE_PID"
SERVE_RC=$?
check "serve exits 0 on SIGTERM (got $SERVE_RC)" test "$SERVE_RC" = 0
check "serve says it stopped cleanly" grep -q 'stopped cleanly' "$TMP/serve.err"
check "serve never logs the secret" bash -c "! grep -qF admin-secret '$TMP/serve.err' '$TMP/serve.out'"
check "serve logs no sanitizer report" bash -c "! grep -q 'Sanitizer' '$TMP/serve.err'"

# ---- serve with no configuration at all: demo mode, calls flowing, clean stop ------------------
mkdir "$TMP/empty"
(cd "$TMP/empty" && exec env -u SWITCHBOARD_CONF "$SB" serve >"$TMP/demo.out" 2>"$TMP/demo.err") &
DEMO_PID=$!
PIDS+=("$DEMO_PID")
for _ in $(seq 1 120); do
    grep -q 'pbx: demo: event Newchannel' "$TMP/demo.err" && break
    sleep 0.05
done
check "demo mode starts by itself without a configuration" grep -q 'starting the built-in PBX simulator' "$TMP/demo.err"
check "demo calls show within 6 s" grep -q 'pbx: demo: event Newchannel' "$TMP/demo.err"
kill -TERM "$DEMO_PID"
for _ in $(seq 1 100); do
    kill -0 "$DEMO_PID" 2>/dev/null || break
    sleep 0.05
done
kill -KILL "$DEMO_PID" 2>/dev/null
wait "$DEMO_PID"
DEMO_RC=$?
check "demo serve exits 0 on SIGTERM (got $DEMO_RC)" test "$DEMO_RC" = 0
check "demo serve logs no sanitizer report" bash -c "! grep -q 'Sanitizer' '$TMP/demo.err'"

echo "cli.sh: $CHECKS checks, $FAILS failed"
[ "$FAILS" -eq 0 ]
