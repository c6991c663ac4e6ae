"""Many read commands as one script call that returns every reply, in order.

The read side of ``shared/packed_writes.py`` (same format, same single-Redis
limit): the commands travel as one MessagePack array and one script returns
their replies as one array, so redis-py builds one command and hiredis parses
one nested reply instead of one per read.

The replies are Redis's raw ones, as a script sees them: a hash comes back as
a flat ``[field, value, ...]`` list (:func:`as_dict`), a set as a list, a
missing value as ``None``.  Callers that also read through redis-py's own
commands (on a Redis Cluster) get dicts and sets there; :func:`as_dict`
accepts both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from shared import packed_writes

# ARGV[1]: (count, command, arguments...) per command, as packed_writes.RUN takes.
READ = """
local ops = cmsgpack.unpack(ARGV[1])
local out, at = {}, 1
while at <= #ops do
  local n = tonumber(ops[at])
  out[#out + 1] = redis.call(unpack(ops, at + 1, at + n))
  at = at + 1 + n
end
return out
"""
_PACK = msgspec.msgpack.Encoder()


def queue(pipe: Any, commands: Sequence[Sequence[str]], packed: bool = True) -> int:
    """Queue ``commands`` (name, key, arguments, all strings) as script calls on ``pipe``.

    Returns how many calls were queued: their replies, passed to
    :func:`replies` with the same ``packed``, give one reply per command, in
    order.  ``packed=False`` (a Redis Cluster, where a script may not name
    undeclared keys) queues each command as it is, parsed by redis-py.
    """
    if not packed:
        for command in commands:
            pipe.execute_command(*command)
        return len(commands)
    calls = 0
    ops: list[Any] = []
    for command in commands:
        if len(command) > packed_writes.MAX_ARGS + 1:
            raise ValueError(f"{command[0]} with {len(command)} arguments is too large to pack")
        packed_writes.add(ops, *command)
        if len(ops) >= packed_writes.CHUNK:
            pipe.execute_command("EVAL", READ, 0, _PACK.encode(ops))
            calls += 1
            ops = []
    if ops:
        pipe.execute_command("EVAL", READ, 0, _PACK.encode(ops))
        calls += 1
    return calls


def replies(results: Sequence[Any], packed: bool = True) -> list[Any]:
    """The replies of the calls :func:`queue` queued, one per command, in order."""
    if not packed:
        return list(results)
    return [reply for call in results for reply in call]


def as_dict(reply: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    """A hash as read here (a flat list) or by redis-py's ``HGETALL`` (a dict)."""
    if isinstance(reply, Mapping):
        return dict(reply)
    return dict(zip(reply[::2], reply[1::2], strict=True))
