#!/usr/bin/env bash
# Install Tocsin with its dev extras, make sure Redis and RabbitMQ run, then
# lint, type-check the core and run the test suite (docs/testing.md).
#   ./deploy/test.sh            the README's test command: lint, types, every test
#                               but the cluster ones
#   ./deploy/test.sh --cluster  the cluster tests (private Redis Cluster and
#                               RabbitMQ cluster nodes), one at a time
#   ./deploy/test.sh ARGS...    one pytest run with ARGS (no lint)
# CI (.ci/run) runs the first two.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
ensure_venv dev
ensure_redis
ensure_rabbitmq
ensure_alertmanager
ensure_chromium
log "ready after ${SECONDS}s"
if [ "${1:-}" = "--cluster" ]; then
  shift
  # One at a time: each starts its own nodes and a whole `tocsin up`, which
  # would compete with each other on two cores.
  log "pytest, cluster tests (private Redis Cluster and RabbitMQ nodes), one at a time"
  exec "$VENV/bin/pytest" -q -p no:cacheprovider -m cluster "$@"
fi
if [ "$#" -gt 0 ]; then
  log "pytest $*"
  exec "$VENV/bin/pytest" -q -p no:cacheprovider "$@"
fi
log "ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
# mypy (about a minute with a cold cache on a fresh clone) runs beside the
# parallel tests, which mostly wait on brokers and child processes; its
# output is shown when it ends.
mypy_log=$(mktemp)
log "mypy --strict (shared/ and the pure cores), in the background"
"$VENV/bin/mypy" >"$mypy_log" 2>&1 &
mypy_pid=$!
# The suite: N processes (each test file stays on one, so a module's pipeline
# fixture starts once), then the tests that assert on timing, alone (marked
# serial). The cluster tests (marked cluster) are `./deploy/test.sh --cluster`.
# TOCSIN_TEST_PROCESSES=0 runs all in one process.
procs=${TOCSIN_TEST_PROCESSES:-2}
rc=0
if [ "$procs" -gt 0 ]; then
  log "pytest, $procs processes (at ${SECONDS}s)"
  "$VENV/bin/pytest" -q -p no:cacheprovider -n "$procs" --dist loadfile \
    -m "not serial and not cluster" || rc=$?
else
  log "pytest"
  "$VENV/bin/pytest" -q -p no:cacheprovider -m "not serial and not cluster" || rc=$?
fi
mypy_rc=0
wait "$mypy_pid" || mypy_rc=$?
log "mypy (at ${SECONDS}s)"
cat "$mypy_log"
rm -f "$mypy_log"
[ "$mypy_rc" -eq 0 ] || rc=$mypy_rc
log "pytest, timing-sensitive tests alone (at ${SECONDS}s)"
# Only the files that mark a test serial: collecting the whole suite again
# costs about 11 s of CPU, more than the four tests themselves.
mapfile -t serial_files < <(grep -rlE --include='test_*.py' 'mark\.serial\b' tests)
"$VENV/bin/pytest" -q -p no:cacheprovider -m serial "${serial_files[@]}" || rc=$?
log "done in ${SECONDS}s"
exit "$rc"
