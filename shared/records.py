"""Convert msgspec Structs to and from Redis hashes (the one place that does it).

Strings are stored as they are, ``None`` by leaving the field out, and every
other value as JSON (so booleans read ``true``/``false`` and numbers read as
digits, as the seed layout expects).
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)

_JSON = msgspec.json.Encoder()
_DECODE = msgspec.json.decode


@functools.cache
def _string_fields(cls: type[msgspec.Struct]) -> frozenset[str]:
    """Fields whose type is ``str`` or ``str | None``: stored raw, not as JSON."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = set()
    for name in cls.__struct_fields__:
        hint = hints[name]
        if typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
        args = (
            set(typing.get_args(hint))
            if typing.get_origin(hint) in (typing.Union, types.UnionType)
            else {hint}
        )
        if args - {type(None)} == {str} or hint is str:
            out.add(name)
    return frozenset(out)


def to_hash(obj: msgspec.Struct) -> dict[str, str]:
    """Encode a Struct as a flat ``dict[str, str]`` for ``HSET``."""
    raw = _string_fields(type(obj))
    out: dict[str, str] = {}
    for name in obj.__struct_fields__:
        value = getattr(obj, name)
        if value is None:
            continue
        out[name] = value if name in raw else _JSON.encode(value).decode()
    return out


def from_hash(cls: type[T], data: Mapping[str, str]) -> T:
    """Decode a hash written by :func:`to_hash` (unknown fields are ignored)."""
    raw = _string_fields(cls)
    fields = set(cls.__struct_fields__)
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in fields:
            continue
        values[name] = value if name in raw else _DECODE(value)
    return msgspec.convert(values, cls)
