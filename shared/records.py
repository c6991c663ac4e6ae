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


@functools.cache
def _defaults(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """Each field's default value (fields without one are left out)."""
    out: dict[str, Any] = {}
    for f in msgspec.structs.fields(cls):
        if f.default is not msgspec.NODEFAULT:
            out[f.name] = f.default
        elif f.default_factory is not msgspec.NODEFAULT:
            out[f.name] = f.default_factory()
    return out


_NO_DEFAULT = object()


@functools.cache
def _plan(cls: type[msgspec.Struct]) -> tuple[tuple[str, bool, Any], ...]:
    """Per field: its name, whether it is stored raw, and its default (or ``_NO_DEFAULT``).

    Worked out once per class: ``to_hash`` runs for every record of every
    batch, and looking these up per field was a tenth of its cost.
    """
    raw = _string_fields(cls)
    defaults = _defaults(cls)
    return tuple(
        (name, name in raw, defaults.get(name, _NO_DEFAULT)) for name in cls.__struct_fields__
    )


def to_hash(obj: msgspec.Struct, omit_defaults: bool = False) -> dict[str, str]:
    """Encode a Struct as a flat ``dict[str, str]`` for ``HSET``.

    With ``omit_defaults`` fields equal to their default are left out (they
    read back as the default), which keeps hashes of many small records lean;
    a writer using it must delete fields that went back to their default.
    """
    out: dict[str, str] = {}
    for name, raw, default in _plan(type(obj)):
        value = getattr(obj, name)
        if value is None or (omit_defaults and default is not _NO_DEFAULT and value == default):
            continue
        out[name] = value if raw else _JSON.encode(value).decode()
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
