# Shared shell functions for deploy/run-local.sh and deploy/test.sh (sourced, not run).
# They make a fresh machine ready: a virtualenv with Tocsin installed, and local
# Redis and RabbitMQ running when the configured URLs point at this machine.

VENV=${TOCSIN_VENV:-.venv}
PY=${PYTHON:-python3}

# Every worker, CLI command and test process imports the project's modules.
# With PYTHONDONTWRITEBYTECODE set (some base images set it), each of them
# compiled every module from source again, and pytest re-rewrote every test
# module in each process: collecting the suite took 16 s of CPU instead of
# 6 s, a worker's start about half as much again.  The byte-code goes to
# __pycache__/ (ignored by git), written at first import; compiling all of
# site-packages at install instead (pip's way, uv's --compile-bytecode) cost
# 10 s more on a fresh clone.
unset PYTHONDONTWRITEBYTECODE

log() { printf '\033[1m[tocsin]\033[0m %s\n' "$*" >&2; }

ensure_venv() {
  local extras=${1:-}
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv in $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.tocsin-installed${extras:+-$extras}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    local pip_log="$VENV/pip-install.log"
    # uv resolves and installs the same packages from the same index in about
    # a tenth of pip's time (6 s against 50 s here); pip stays the fallback
    # where uv cannot be had (an index without it, an unsupported platform).
    if { "$VENV/bin/python" -m pip install -q uv &&
         "$VENV/bin/python" -m uv pip install -q --python "$VENV/bin/python" \
           -e ".${extras:+[$extras]}"; } >"$pip_log" 2>&1; then
      log "installed tocsin${extras:+ with [$extras]} (uv)"
    else
      log "installing tocsin${extras:+ with [$extras]} (pip; uv was not usable, see $pip_log)"
      if ! { "$VENV/bin/python" -m pip install --upgrade pip &&
             "$VENV/bin/python" -m pip install -e ".${extras:+[$extras]}"; } >>"$pip_log" 2>&1; then
        tail -n 30 "$pip_log" >&2
        log "pip install failed; full log in $pip_log"
        return 1
      fi
    fi
    touch "$stamp"
  fi
}

_port_open() { # host port
  "$VENV/bin/python" - "$1" "$2" <<'PYEOF'
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
PYEOF
}

_local_url() { # url -> 0 if it points at this machine
  case "$1" in
    *://127.0.0.1*|*://localhost*|*@127.0.0.1*|*@localhost*) return 0 ;;
    *) return 1 ;;
  esac
}

_apt_install() {
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    log "installing $* from the system package manager"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    log "please install $* (no root apt-get available here)"
    return 1
  fi
}

ensure_redis() {
  local url=${TOCSIN_REDIS_URL:-redis://127.0.0.1:6379/0}
  _local_url "$url" || return 0
  _port_open 127.0.0.1 6379 && return 0
  command -v redis-server >/dev/null 2>&1 || _apt_install redis-server
  log "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do _port_open 127.0.0.1 6379 && return 0; sleep 0.2; done
  log "redis did not come up"; return 1
}

ensure_rabbitmq() {
  local url=${TOCSIN_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}
  _local_url "$url" || return 0
  _port_open 127.0.0.1 5672 && return 0
  command -v rabbitmq-server >/dev/null 2>&1 || _apt_install rabbitmq-server
  log "starting rabbitmq-server (this takes a few seconds)"
  # Every quorum queue keeps files open, and RabbitMQ stops accepting connections
  # (the handshake hangs) once its file-handle budget, about 90% of `ulimit -n`, is
  # spent: with su's default of 1024 that is about 300 queues, four or five test
  # namespaces at once.  Start it with a real limit (docs/scaling.md, "RabbitMQ file handles").
  local nofile=65536
  if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1 && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    (cd /var/lib/rabbitmq && su rabbitmq -s /bin/sh -c \
      "ulimit -n $nofile 2>/dev/null || ulimit -n \$(ulimit -Hn); /usr/lib/rabbitmq/bin/rabbitmq-server -detached") \
      >/dev/null 2>&1 || true
  else
    (ulimit -n "$nofile" 2>/dev/null || ulimit -n "$(ulimit -Hn)"; rabbitmq-server -detached) >/dev/null 2>&1 || true
  fi
  for _ in $(seq 120); do _port_open 127.0.0.1 5672 && return 0; sleep 0.5; done
  log "rabbitmq did not come up"; return 1
}

# Optional: the real Prometheus Alertmanager for tests/integration/test_source_alertmanager_real.py.
# Never fails the caller: without it that one test skips and says why.
ensure_alertmanager() {
  command -v prometheus-alertmanager >/dev/null 2>&1 && return 0
  command -v alertmanager >/dev/null 2>&1 && return 0
  _apt_install prometheus-alertmanager \
    || log "prometheus-alertmanager not installed; the real-Alertmanager test will be skipped"
  return 0
}

# Optional: Debian's Chromium for the dashboard's browser tests (tests/e2e/test_ui_browser.py,
# driven by Playwright; `playwright install` cannot download browsers here). Never fails the caller.
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  _apt_install chromium || log "chromium not installed; the dashboard browser tests will be skipped"
  return 0
}
