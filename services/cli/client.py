"""A small API client for the CLI: address and token from the environment or token file.

API errors become :class:`ApiCallFailed` carrying the API's own message and
field, so the CLI can print exactly what was wrong.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import httpx

from shared.config import Settings
from shared.tokens import read_token


class ApiCallFailed(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def __str__(self) -> str:
        where = f" (field: {self.field})" if self.field else ""
        return f"HTTP {self.status}: {self.message}{where}"


class ApiClient:
    """JSON calls to the management API with the admin token."""

    def __init__(self, settings: Settings, token: str | None = None, timeout: float = 15.0) -> None:
        token = token or read_token(settings)
        if not token:
            raise ApiCallFailed(0, "no API token: set TOCSIN_API_TOKEN or run `tocsin up` once")
        self.http = httpx.Client(
            base_url=settings.api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ApiCallFailed(0, f"cannot reach the API at {self.http.base_url}: {exc}") from None
        if r.status_code >= 400:
            try:
                body = r.json()
                raise ApiCallFailed(r.status_code, str(body.get("error")), body.get("field"))
            except ValueError:
                raise ApiCallFailed(r.status_code, r.text[:500]) from None
        return r.json() if r.content else None

    def all_items(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paginated list."""
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.call("GET", path, params={**params, "limit": 1000, "offset": offset})
            items.extend(page["items"])
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return items

    def close(self) -> None:
        self.http.close()


_DURATION = re.compile(r"^(\d+)([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``4h``, ``2d``, ``1w`` -> seconds."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"bad duration {text!r} (use e.g. 90s, 15m, 4h, 2d)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds, ISO 8601 (``2026-11-23T14:00+01:00``; naive = local), or ``now[+duration]``."""
    t = time.time() if now is None else now
    text = text.strip()
    if text == "now":
        return t
    if text.startswith("now+"):
        return t + parse_duration(text[4:])
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad time {text!r} (use epoch seconds, ISO 8601 or now+1h)") from None
    return dt.timestamp() if dt.tzinfo else dt.astimezone().timestamp()


def split_check(name: str) -> tuple[str, str]:
    """``entity:check`` -> (entity, check); the check name may itself contain ':'."""
    entity, sep, check = name.partition(":")
    if not sep or not entity or not check:
        raise ValueError(f"expected ENTITY:CHECK, got {name!r}")
    return entity, check
