"""How a pipeline's queued commands are folded into packed script calls (no Redis)."""

from __future__ import annotations

from typing import Any

import msgspec

from shared import packed_writes


class _Stack:
    """Just what ``pack_pipeline`` touches of a redis-py pipeline."""

    def __init__(self, *commands: tuple[Any, ...]) -> None:
        self.command_stack: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
            (c, {}) for c in commands
        ]


def _unpacked(entry: tuple[Any, ...]) -> list[list[Any]]:
    """The commands one packed script call carries."""
    assert entry[:3] == ("EVAL", packed_writes.RUN, 0)
    ops = msgspec.msgpack.decode(entry[3])
    out, at = [], 0
    while at < len(ops):
        n = ops[at]
        out.append(ops[at + 1 : at + 1 + n])
        at += 1 + n
    return out


def test_commands_become_one_call_with_arguments_as_redis_py_would_send_them() -> None:
    pipe = _Stack(
        ("SET", "k", "v", "EX", 60),
        ("ZADD", "z", 1796375595.1696382, "m"),
        ("HSET", "h", "f", "æ".encode(), b"g", memoryview(b"x")),
    )
    packed_writes.pack_pipeline(pipe)
    (only,) = pipe.command_stack
    assert _unpacked(only[0]) == [
        ["SET", "k", "v", "EX", "60"],
        ["ZADD", "z", "1796375595.1696382", "m"],  # repr: no digits lost
        ["HSET", "h", "f", "æ", "g", "x"],  # UTF-8 bytes: the same bytes, as text
    ]


def test_scripts_large_commands_and_odd_arguments_stay_in_place_and_in_order() -> None:
    big = ("SADD", "s", *[str(i) for i in range(packed_writes.MAX_ARGS + 1)])
    pipe = _Stack(
        ("SET", "a", "1"),
        ("EVAL", "return 1", 0),
        ("SET", "b", "2"),
        big,
        ("SET", "c", True),  # redis-py refuses booleans: left for it to refuse
        ("SET", "raw", b"\xff"),  # not UTF-8: Redis's cmsgpack has no bin type
        ("SET", "d", "4"),
    )
    packed_writes.pack_pipeline(pipe)
    stack = [args for args, _ in pipe.command_stack]
    assert [_unpacked(stack[0]), stack[1], _unpacked(stack[2]), stack[3], stack[4]] == [
        [["SET", "a", "1"]],
        ("EVAL", "return 1", 0),
        [["SET", "b", "2"]],
        big,
        ("SET", "c", True),
    ]
    assert stack[5] == ("SET", "raw", b"\xff")
    assert _unpacked(stack[6]) == [["SET", "d", "4"]]


def test_many_commands_are_split_into_calls_of_bounded_size() -> None:
    n = packed_writes.CHUNK  # four values per command: several calls
    pipe = _Stack(*[("SET", f"k{i}", "v") for i in range(n)])
    packed_writes.pack_pipeline(pipe)
    calls = [_unpacked(args) for args, _ in pipe.command_stack]
    assert len(calls) > 1
    assert [c for call in calls for c in call] == [["SET", f"k{i}", "v"] for i in range(n)]
