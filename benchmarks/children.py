"""Child processes of a benchmark that die with it.

A benchmark stops its workers when it ends, but not when it is killed from
outside: a test's timeout kills it with SIGKILL, which no cleanup survives,
and its workers went on running for an hour, consuming from a namespace
nobody would delete.  :func:`bound_to_me` wraps a child's argv so that the
kernel sends the child SIGTERM when this process dies (Linux's
``PR_SET_PDEATHSIG``; the setting survives the ``exec`` into the real
command).  It is set in a small launcher rather than in ``preexec_fn``,
which is unsafe in a parent that runs threads (the benchmarks' receivers).

``python -m benchmarks.children PARENT_PID COMMAND...`` is that launcher.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def bound_to_me(argv: list[str]) -> list[str]:
    """``argv`` run so that it gets SIGTERM when this process exits (as is, off Linux)."""
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-m", "benchmarks.children", str(os.getpid()), *argv]


def main() -> None:
    parent, argv = int(sys.argv[1]), sys.argv[2:]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # it died before the setting took: do not start at all
        sys.exit(1)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
