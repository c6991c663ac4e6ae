#!/usr/bin/env bash
# Install Tocsin in a virtualenv, make sure Redis and RabbitMQ run, then start
# every worker with `tocsin up --demo` (Ctrl-C stops it). Extra arguments go to `tocsin up`.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh
ensure_venv
ensure_redis
ensure_rabbitmq
exec "$VENV/bin/tocsin" up --demo "$@"
