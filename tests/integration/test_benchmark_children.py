"""A benchmark's children die with it, even when it is killed with SIGKILL (benchmarks/children.py).

Without this, a benchmark killed by a test's timeout left its workers
running for an hour against a namespace nobody deleted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# A parent that starts `sleep 600` (bound or not), prints its pid, then waits to be killed.
PARENT = """
import subprocess, sys, time
from benchmarks.children import bound_to_me
argv = ["sleep", "600"]
child = subprocess.Popen(bound_to_me(argv) if sys.argv[1] == "bound" else argv)
deadline = time.monotonic() + 60
while not open(f"/proc/{child.pid}/cmdline", "rb").read().startswith(b"sleep"):
    assert time.monotonic() < deadline, "the launcher never became sleep"
    time.sleep(0.01)  # until the launcher has exec'd into the command
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def orphan_after_sigkill(mode: str) -> tuple[int, bool]:
    """Kill the parent with SIGKILL; the child's pid and whether it outlived the parent by 5 s."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert alive(pid)
    assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep")
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid, alive(pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_bound_child_dies_with_its_parent_and_an_unbound_one_does_not() -> None:
    _, survived = orphan_after_sigkill("bound")
    assert not survived
    pid, survived = orphan_after_sigkill("plain")  # the control: what happened before
    try:
        assert survived
    finally:
        os.kill(pid, signal.SIGKILL)
