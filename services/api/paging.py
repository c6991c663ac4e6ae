"""Pages of a listing: ``limit`` and ``offset`` checked once for every list endpoint."""

from __future__ import annotations

from typing import TypeVar

from services.api.errors import ApiError
from services.api.schemas import Page

T = TypeVar("T")

MAX_PAGE = 1000


def page_of(items: list[T], limit: int, offset: int) -> Page[T]:
    """``items[offset : offset + limit]`` with the total; 400 naming the bad parameter."""
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, f"limit must be between 1 and {MAX_PAGE}", "limit")
    if offset < 0:
        raise ApiError(400, "offset must be >= 0", "offset")
    return Page(items=items[offset : offset + limit], total=len(items), limit=limit, offset=offset)
