"""Many write commands as one script call, their arguments in one MessagePack array.

redis-py builds every command of a pipeline in Python: it encodes each
argument and writes its RESP framing, then parses one reply per command.  For
a batch of a few thousand small writes that was a third of a worker's CPU
(docs/benchmarks.md).  Here the commands travel as one array that msgspec
packs in C and Redis's built-in ``cmsgpack`` unpacks in C; one script runs
them in order and returns how many ran.

Only on a single Redis: the script names keys it was not given as keys, which
a Redis Cluster refuses (cluster callers declare keys per slot instead, as the
processor's cluster write does).  Inside a ``MULTI`` the script call is one
command of the transaction; a ``WATCH`` before it guards it as any command.
Replies of the packed commands are not returned, so only writes whose replies
nobody reads belong here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

# ARGV[1]: (count, command, arguments...) per command; count includes the command.
RUN = """
local ops = cmsgpack.unpack(ARGV[1])
local at, done = 1, 0
while at <= #ops do
  local n = tonumber(ops[at])
  redis.call(unpack(ops, at + 1, at + n))
  at = at + 1 + n
  done = done + 1
end
return done
"""
# Lua's C stack takes ~8,000 values per unpack; a larger command is sent as it is.
MAX_ARGS = 4_000
# Values per script call: several smaller calls, not one huge one, because redis-py
# copies a command's arguments while packing it (it drove a worker's peak RSS up).
CHUNK = 20_000
# Commands that cannot run inside a script; they stay in the pipeline as they are.
_NOT_IN_SCRIPTS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "MULTI", "EXEC"})
_PACK = msgspec.msgpack.Encoder()


def add(ops: list[Any], *command: str) -> None:
    """Append one command (its name, key and arguments, as strings) to ``ops``."""
    ops.append(len(command))
    ops.extend(command)


def queue(pipe: Any, ops: list[Any]) -> None:
    """Queue ``ops`` on ``pipe`` as one script call and empty it (nothing if it is empty)."""
    if ops:
        pipe.execute_command("EVAL", RUN, 0, _PACK.encode(ops))
        ops.clear()


def pack_pipeline(pipe: Any) -> None:
    """Turn the commands queued on a single Redis's ``pipe`` into script calls, in order.

    Commands a script cannot run (scripts themselves), with more than
    :data:`MAX_ARGS` arguments, or with an argument redis-py would refuse
    stay as they are, between the script calls, so the order holds.
    """
    stack: list[tuple[Sequence[Any], dict[str, Any]]] = []
    ops: list[Any] = []
    for args, options in pipe.command_stack:
        command = _strings(args)
        if command is None:
            _flush_into(stack, ops)
            stack.append((args, options))
            continue
        add(ops, *command)
        if len(ops) >= CHUNK:
            _flush_into(stack, ops)
    _flush_into(stack, ops)
    pipe.command_stack = stack


def _flush_into(stack: list[tuple[Sequence[Any], dict[str, Any]]], ops: list[Any]) -> None:
    if ops:
        stack.append((("EVAL", RUN, 0, _PACK.encode(ops)), {}))
        ops.clear()


def _strings(args: Sequence[Any]) -> list[str] | None:
    """The arguments as redis-py would send them, or None if this command stays unpacked.

    redis-py sends bytes as they are, text as UTF-8 and numbers as their
    ``repr``; it refuses anything else (booleans included), and so does this,
    by leaving the command to redis-py.  Bytes that are not UTF-8 also leave
    their command to redis-py (see below).
    """
    if len(args) > MAX_ARGS + 1 or not args:
        return None
    name = args[0]
    if not isinstance(name, str) or " " in name or name.upper() in _NOT_IN_SCRIPTS:
        return None
    out: list[str] = []
    try:
        for a in args:
            if isinstance(a, str):
                out.append(a)
            elif isinstance(a, (bytes, memoryview)):
                # Redis's cmsgpack reads no MessagePack ``bin``: bytes travel as the
                # text they spell (the same bytes on the wire); others stay unpacked.
                out.append(bytes(a).decode())
            elif isinstance(a, (int, float)) and not isinstance(a, bool):
                out.append(repr(a))
            else:
                return None
    except UnicodeDecodeError:
        return None
    return out
