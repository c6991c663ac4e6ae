"""Every API error is JSON ``{"error": "...", "field": "..."}`` with a 4xx status."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from shared.directory import ValidationFailed

log = logging.getLogger(__name__)

_PATH = re.compile(r" - at `\$\.?([^`]*)`")
_NAMED = re.compile(r"field `([^`]+)`")


class ApiError(HTTPException):
    """An error with a status, a message and the offending field."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(detail=message, status_code=status)
        self.field = field


def split_field(message: str) -> tuple[str, str | None]:
    """Turn msgspec's ``... - at `$.a.b``` into a message and a field path ``a.b``."""
    match = _PATH.search(message)
    named = _NAMED.search(message)
    if not match and named:
        return message, named.group(1)
    if not match:
        field = message.split(":", 1)[0] if re.match(r"^[a-z_.\[\]0-9]+:", message) else None
        return message, field
    return message[: match.start()], match.group(1) or None


def _body(message: str, field: str | None) -> dict[str, str | None]:
    return {"error": message, "field": field}


def on_api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[dict[str, str | None]]:
    return Response(_body(str(exc.detail), exc.field), status_code=exc.status_code)


def on_validation_failed(
    _: Request[Any, Any, Any], exc: ValidationFailed
) -> Response[dict[str, str | None]]:
    return Response(_body(exc.message, exc.field), status_code=422)


def on_validation(
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, str | None]]:
    # Litestar wraps msgspec's message; recover the first field-level message.
    message = str(exc.detail)
    extra = exc.extra
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        message = str(extra[0].get("message", message))
        key = extra[0].get("key")
        if key and key not in ("body", "data"):
            return Response(_body(message, str(key)), status_code=400)
    msg, field = split_field(message)
    return Response(_body(msg, field), status_code=400)


def on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, str | None]]:
    return Response(_body(str(exc.detail), None), status_code=exc.status_code, headers=exc.headers)


def on_unexpected(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, str | None]]:
    log.exception("unhandled API error", extra={"path": request.url.path})
    return Response(_body("internal error", None), status_code=HTTP_500_INTERNAL_SERVER_ERROR)


EXCEPTION_HANDLERS = {
    ApiError: on_api_error,
    ValidationFailed: on_validation_failed,
    ValidationException: on_validation,
    HTTPException: on_http,
    Exception: on_unexpected,
}
