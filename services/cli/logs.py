"""CLI commands that read the delivery log and the notification log, newest first."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli.output import Columns, JsonOpt, api_client, show, when

DELIVERY_COLS: Columns = [
    ("time", lambda r: when(r["time"])),
    ("check", lambda r: f"{r['entity']}:{r['check']}"),
    ("type", lambda r: r["type"]),
    ("medium", lambda r: r["medium_type"]),
    ("address", lambda r: r["address"]),
    ("outcome", lambda r: r["outcome"]),
    ("attempts", lambda r: r["attempts"]),
    ("ms", lambda r: r.get("latency_ms")),
    ("error", lambda r: r.get("error")),
]
NOTIFICATION_COLS: Columns = [
    ("time", lambda r: when(r["time"])),
    ("check", lambda r: f"{r['entity']}:{r['check']}"),
    ("type", lambda r: r["type"]),
    ("state", lambda r: r["state"]),
    ("summary", lambda r: r["summary"][:60]),
]


def _show_log(
    path: str, columns: Columns, entity: str | None, check: str | None, limit: int, as_json: bool
) -> None:
    params = {
        k: v for k, v in {"entity": entity, "check": check, "limit": limit}.items() if v is not None
    }
    with api_client() as api:
        show(api.call("GET", path, params=params)["items"], columns, as_json)


def deliveries(
    entity: Annotated[str | None, typer.Option()] = None,
    check: Annotated[str | None, typer.Option()] = None,
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """The delivery log, newest first."""
    _show_log("/deliveries", DELIVERY_COLS, entity, check, limit, as_json)


def notifications(
    entity: Annotated[str | None, typer.Option()] = None,
    check: Annotated[str | None, typer.Option()] = None,
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """Notifications the processor decided on, newest first."""
    _show_log("/notifications", NOTIFICATION_COLS, entity, check, limit, as_json)
