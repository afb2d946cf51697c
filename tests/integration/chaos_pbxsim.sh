#!/usr/bin/env bash
# chaos_pbxsim.sh: the chaos test (chaos.sh) with the PBX simulator as the event source
# (CHAOS_SOURCE=pbxsim): switchboard logged in to tools/pbxsim over AMI while the simulator plays
# a load of internal calls, the webhook receiver is down, nats-server restarts and switchboard is
# SIGKILLed twice. Every receiver must hold exactly what the outbox committed, in per-call order,
# and the simulator must stay responsive and connected throughout (see chaos.sh's header).
#
# Sized for CI: about 20 s of load in a release build (1,000 calls/s, 60,000 events) and 25 s in
# an ASan build (400 calls/s, 30,000 events), leaving each build at least 2x headroom on the
# 2-core CI machine while other tests run beside it (docs/delivery.md, "Chaos test").
# Env: the same as chaos.sh; CHAOS_EVENTS and CHAOS_CALL_RATE override the sizes.
set -euo pipefail
SRC=${SB_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${SB_BIN:-$SRC/build}
if grep -qs '^SB_SANITIZE:BOOL=ON' "$BIN/CMakeCache.txt"; then
    events=30000 rate=400
else
    events=60000 rate=1000
fi
export CHAOS_SOURCE=pbxsim
export CHAOS_EVENTS=${CHAOS_EVENTS:-$events}
export CHAOS_CALL_RATE=${CHAOS_CALL_RATE:-$rate}
exec bash "$SRC/tests/integration/chaos.sh"
