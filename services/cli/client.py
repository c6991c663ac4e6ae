"""A small API client for the CLI: address and token from the environment or token file.

API errors become :class:`ApiCallFailed` carrying the API's own message and
field, so the CLI can print exactly what was wrong.
"""

from __future__ import annotations

from typing import Any

import httpx

from shared.config import Settings
from shared.tokens import cli_token


class ApiCallFailed(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def __str__(self) -> str:
        where = f" (field: {self.field})" if self.field else ""
        status = f"HTTP {self.status}: " if self.status else ""
        return f"{status}{self.message}{where}"


class ApiClient:
    """JSON calls to the management API with the admin token."""

    def __init__(self, settings: Settings, token: str | None = None, timeout: float = 15.0) -> None:
        found, origin = cli_token(settings)
        token = token or found
        if not token:
            raise ApiCallFailed(
                0,
                f"no API token: TOCSIN_API_TOKEN is unset and {settings.token_path} does not "
                "exist; run `tocsin up` once (it creates the file) or set TOCSIN_API_TOKEN",
            )
        self.token_origin = origin
        self.http = httpx.Client(
            base_url=settings.api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            url = str(self.http.base_url).rstrip("/")
            raise ApiCallFailed(
                0,
                f"cannot reach the API at {url} ({exc or type(exc).__name__}). Is it running? "
                "Start the pipeline with `tocsin up` (or only the API with `tocsin worker api`); "
                "the CLI takes the address from TOCSIN_API_LISTEN",
            ) from None
        if r.status_code >= 400:
            try:
                body = r.json()
                message, field = str(body.get("error")), body.get("field")
            except ValueError:
                message, field = r.text[:500], None
            if r.status_code == 401:
                message += (
                    f"; the CLI read its token from {self.token_origin}; run `tocsin login` "
                    "with a personal token, or use the API's TOCSIN_API_TOKEN"
                )
            raise ApiCallFailed(r.status_code, message, field)
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
