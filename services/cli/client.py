"""A small API client for the CLI: address and token from the environment or token file.

API errors become :class:`ApiCallFailed` carrying the API's own message and
field, so the CLI can print exactly what was wrong.
"""

from __future__ import annotations

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
