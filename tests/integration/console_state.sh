#!/usr/bin/env bash
# console_state.sh: the web console's logic without a browser or a daemon: node --test runs
# tests/e2e/console-state.test.mjs (ConsoleState over every golden event file, EventStream's
# de-duplication, gap count and resume position, formatting). Needs node only.
# Env: SB_SRC (source dir).
set -u
SRC="${SB_SRC:?SB_SRC must name the source directory}"
command -v node >/dev/null || { echo "console_state: node is not installed (apt-get install -y nodejs)" >&2; exit 1; }
cd "$SRC" || exit 1
timeout 120 node --test tests/e2e/console-state.test.mjs
