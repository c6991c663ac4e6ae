"""A free TCP port on loopback for a child process to listen on, outside the kernel's ephemeral range.

Asking the kernel for port 0 returns a port from the ephemeral range
(``net.ipv4.ip_local_port_range``, 32768-60999 here), the same range every
outgoing connection takes its local port from.  Between picking such a port and
the child binding it, one of the many client connections a test run makes (to
Redis, RabbitMQ, a receiver) could take it, and the child then failed with
"address already in use" (seen in the fault tests under a parallel run).  A
port below the ephemeral range is never handed to a client socket, so only
another listener could take it, and the bind check here rules that out at the
time of picking.

That check cannot see a port picked but not yet bound, which left two races,
both closed here:

- Two test processes (pytest-xdist) picking the same port within the second
  before either child binds it: one child then fails to bind, and its caller
  may talk to the other's server meanwhile (a fresh-clone run on 2026-12-03
  saw the pipeline benchmark's ``/health`` answered, then ``POST /contacts``
  refused).  Each xdist worker (``PYTEST_XDIST_WORKER=gwN``, which child
  processes inherit) picks from its own slice of the range.
- One process picking several ports before starting the children that bind
  them (the benchmark picks the API's port and every worker's metrics port
  first): a process never hands out the same port twice in a row of
  :data:`REMEMBERED` picks.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections import deque
from collections.abc import Mapping

# Below the ephemeral range (32768-60999 here), above the ports our brokers use
# (epmd 4369, RabbitMQ 5672, Redis 6379), and below the private Redis Cluster
# nodes' range (benchmarks/redis_cluster.py: 12000-22000, bus ports +10000).
LOW, HIGH = 7000, 11999
# Ports this process handed out lately: their children may not have bound them yet.
REMEMBERED = 256
_handed_out: deque[int] = deque(maxlen=REMEMBERED)


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 when it cannot be read)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return HIGH + 1


def port_range(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """The ports this process picks from: LOW..HIGH below the ephemeral range, or,
    in a pytest-xdist worker, that worker's own slice of it."""
    env = os.environ if environ is None else environ
    low, high = LOW, min(HIGH, ephemeral_low() - 1)
    worker = env.get("PYTEST_XDIST_WORKER", "")
    count = int(env.get("PYTEST_XDIST_WORKER_COUNT", "1") or "1")
    if count > 1 and worker.startswith("gw") and worker[2:].isdigit():
        size = (high - low + 1) // count
        low += (int(worker[2:]) % count) * size
        high = low + size - 1
    return low, high


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on now and no client socket will be given."""
    low, high = port_range()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.append(port)
        return port
    # Fall back to the kernel's choice rather than fail the caller.
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``port`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False
