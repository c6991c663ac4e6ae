#!/usr/bin/env bash
# Install Tocsin with its dev extras, make sure Redis and RabbitMQ run, then
# lint, type-check the core and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
ensure_venv dev
ensure_redis
ensure_rabbitmq
ensure_alertmanager
ensure_chromium
log "ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
log "mypy --strict (shared/ and the pure cores)"
"$VENV/bin/mypy"
if [ "$#" -gt 0 ]; then
  log "pytest $*"
  exec "$VENV/bin/pytest" -q -p no:cacheprovider "$@"
fi
# The whole suite: two processes (each test file stays on one, so a module's
# pipeline fixture starts once), then the tests that assert on timing, alone
# (marked serial), then the cluster tests, which start their own 3-node Redis
# Cluster, one at a time (marked cluster; `./deploy/test.sh -m cluster` runs only
# them; docs/testing.md). TOCSIN_TEST_PROCESSES=0 runs all in one.
procs=${TOCSIN_TEST_PROCESSES:-2}
rc=0
if [ "$procs" -gt 0 ]; then
  log "pytest, $procs processes"
  "$VENV/bin/pytest" -q -p no:cacheprovider -n "$procs" --dist loadfile \
    -m "not serial and not cluster" || rc=$?
  log "pytest, timing-sensitive tests alone"
  "$VENV/bin/pytest" -q -p no:cacheprovider -m serial || rc=$?
  log "pytest, cluster tests (private Redis Cluster nodes), one at a time"
  "$VENV/bin/pytest" -q -p no:cacheprovider -m cluster || rc=$?
else
  log "pytest"
  "$VENV/bin/pytest" -q -p no:cacheprovider || rc=$?
fi
exit "$rc"
