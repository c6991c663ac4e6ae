"""How read commands are packed into script calls, and how their replies come back."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from shared import packed_reads, packed_writes


class _Pipe:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any) -> None:
        self.calls.append(args)


def test_reads_are_packed_in_order_into_bounded_calls() -> None:
    pipe = _Pipe()
    n = packed_writes.CHUNK // 3 + 5  # three values per command: two calls
    commands = [["GET", f"k{i}"] for i in range(n)]
    assert packed_reads.queue(pipe, commands) == len(pipe.calls) == 2
    unpacked = []
    for name, script, nkeys, ops in pipe.calls:
        assert (name, script, nkeys) == ("EVAL", packed_reads.READ, 0)
        values = msgspec.msgpack.decode(ops)
        at = 0
        while at < len(values):
            unpacked.append(values[at + 1 : at + 1 + values[at]])
            at += 1 + values[at]
    assert unpacked == commands
    assert packed_reads.replies([["a", None], [["x", "1"]]]) == ["a", None, ["x", "1"]]


def test_a_command_too_large_to_pack_is_refused() -> None:
    with pytest.raises(ValueError, match="too large"):
        packed_reads.queue(_Pipe(), [["ZMSCORE", "k", *map(str, range(packed_writes.MAX_ARGS))]])


def test_hashes_read_either_way_become_dicts() -> None:
    assert packed_reads.as_dict(["a", "1", "b", "2"]) == {"a": "1", "b": "2"}
    assert packed_reads.as_dict({"a": "1"}) == {"a": "1"}
    assert packed_reads.as_dict([]) == {}
