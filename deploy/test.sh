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
log "pytest"
exec "$VENV/bin/pytest" -q -p no:cacheprovider "$@"
