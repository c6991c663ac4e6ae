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
"""

from __future__ import annotations

import random
import socket

# Below the ephemeral range (32768-60999 here), above the ports our brokers use
# (epmd 4369, RabbitMQ 5672, Redis 6379), and below the private Redis Cluster
# nodes' range (benchmarks/redis_cluster.py: 12000-22000, bus ports +10000).
LOW, HIGH = 7000, 11999


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 when it cannot be read)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return HIGH + 1


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on now and no client socket will be given."""
    high = min(HIGH, ephemeral_low() - 1)
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(LOW, high)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    # Fall back to the kernel's choice rather than fail the caller.
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
