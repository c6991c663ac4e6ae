"""CLI commands for checks, acknowledgements and maintenance windows."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.cli.output import JsonOpt, api_client, out, show, when
from services.cli.parsing import (
    parse_duration,
    parse_time,
    split_check,
)

# ------------------------------------------------------------------------------ checks

checks = typer.Typer(help="Checks: current state, history, enable/disable.", no_args_is_help=True)


def _window(m: dict[str, Any] | None) -> str:
    """An ack or maintenance window in a table cell: until when (empty when none)."""
    return "" if not m else f"until {when(m['end_time'])}"


CHECK_COLS = [
    ("check", lambda r: f"{r['entity']}:{r['check']}"),
    ("state", lambda r: r["state"]),
    ("since", lambda r: when(r.get("state_since"))),
    ("summary", lambda r: (r.get("summary") or "")[:60]),
    ("enabled", lambda r: r["enabled"]),
    ("ack", lambda r: _window(r.get("acknowledgement"))),
    ("maintenance", lambda r: _window(r.get("scheduled_maintenance"))),
    ("incident", lambda r: r.get("incident_id")),
]


@checks.command("list")
def checks_list(
    state: Annotated[str | None, typer.Option()] = None,
    entity: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[str | None, typer.Option()] = None,
    failing: Annotated[bool | None, typer.Option("--failing/--passing", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    params = {
        k: v
        for k, v in {"state": state, "entity": entity, "tag": tag, "failing": failing}.items()
        if v is not None
    }
    with api_client() as api:
        show(api.all_items("/checks", **params), CHECK_COLS, as_json)


@checks.command("show")
def checks_show(
    name: Annotated[str, typer.Argument(help="ENTITY:CHECK")], as_json: JsonOpt = False
) -> None:
    with api_client() as api:
        entity, check = split_check(name)
        show(api.call("GET", f"/checks/{entity}/{check}"), CHECK_COLS, as_json)


@checks.command("history")
def checks_history(
    name: Annotated[str, typer.Argument(help="ENTITY:CHECK")],
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    with api_client() as api:
        entity, check = split_check(name)
        rows = api.call("GET", f"/checks/{entity}/{check}/states", params={"limit": limit})["items"]
        show(
            rows,
            [
                ("since", lambda r: when(r["timestamp"])),
                ("state", lambda r: r["state"]),
                ("events", lambda r: r["count"]),
                ("notified", lambda r: r["notified"]),
                ("summary", lambda r: r["summary"][:60]),
            ],
            as_json,
        )


def _set_enabled(name: str, enabled: bool) -> None:
    with api_client() as api:
        entity, check = split_check(name)
        api.call("PATCH", f"/checks/{entity}/{check}", json={"enabled": enabled})
        out.print(f"{name} {'enabled' if enabled else 'disabled'}")


@checks.command("enable")
def checks_enable(name: Annotated[str, typer.Argument(help="ENTITY:CHECK")]) -> None:
    _set_enabled(name, True)


@checks.command("disable")
def checks_disable(name: Annotated[str, typer.Argument(help="ENTITY:CHECK")]) -> None:
    """Keep recording state but notify nobody."""
    _set_enabled(name, False)


# ------------------------------------------------------------------------------ maintenance

maintenance = typer.Typer(
    help="Maintenance: no problem notifications inside the window (scheduled, or unscheduled "
    "on any check now).",
    no_args_is_help=True,
)
MAINT_COLS = [
    ("id", lambda r: r["id"]),
    ("type", lambda r: r.get("type", "scheduled") + (" (now)" if r.get("active") else "")),
    ("start", lambda r: when(r["start_time"])),
    ("end", lambda r: when(r["end_time"])),
    ("summary", lambda r: r["summary"]),
]


@maintenance.command("add")
def maintenance_add(
    name: Annotated[str, typer.Argument(help="ENTITY:CHECK")],
    start: Annotated[str, typer.Option(help="Epoch, ISO 8601 or now[+dur]")] = "now",
    end: Annotated[str | None, typer.Option()] = None,
    duration: Annotated[str | None, typer.Option(help="e.g. 2h (instead of --end)")] = None,
    summary: Annotated[str, typer.Option()] = "",
    unscheduled: Annotated[
        bool,
        typer.Option(
            help="Unscheduled maintenance from now, on any check (failing or not); ends at its "
            "recovery, like an acknowledgement."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    with api_client() as api:
        entity, check = split_check(name)
        t0 = parse_time(start)
        if end is None and duration is None:
            raise ValueError("give --end or --duration")
        t1 = parse_time(end) if end is not None else t0 + parse_duration(duration or "0")
        body = {
            "start_time": t0,
            "end_time": t1,
            "summary": summary,
            "type": "unscheduled" if unscheduled else "scheduled",
        }
        show(
            api.call("POST", f"/checks/{entity}/{check}/maintenances", json=body),
            MAINT_COLS,
            as_json,
        )


SILENCE_COLS = [
    ("check", lambda r: f"{r['entity']}:{r['check']}"),
    ("kind", lambda r: r["kind"] if r["active"] else f"{r['kind']} (later)"),
    ("start", lambda r: when(r["start_time"])),
    ("end", lambda r: when(r["end_time"])),
    ("summary", lambda r: r["summary"]),
    ("id", lambda r: r["id"]),
]


@maintenance.command("list")
def maintenance_list(
    name: Annotated[
        str | None, typer.Argument(help="ENTITY:CHECK (none: what is silenced now, every check)")
    ] = None,
    upcoming: Annotated[
        bool, typer.Option(help="Without ENTITY:CHECK: list windows that start later too.")
    ] = False,
    past: Annotated[bool, typer.Option(help="With ENTITY:CHECK: ended windows too.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """A check's maintenance windows, or everything silenced now (maintenance and acks)."""
    with api_client() as api:
        if name is None:
            rows = api.all_items("/maintenances", upcoming=str(upcoming).lower())
            show(rows, SILENCE_COLS, as_json)
            return
        entity, check = split_check(name)
        params = {"past": "true"} if past else {}
        rows = api.call("GET", f"/checks/{entity}/{check}/maintenances", params=params)["items"]
        show(rows, MAINT_COLS, as_json)


@maintenance.command("delete")
def maintenance_delete(
    name: Annotated[str, typer.Argument(help="ENTITY:CHECK")], maintenance_id: str
) -> None:
    """End a window early: a running one (or an acknowledgement) ends now, a later one goes."""
    with api_client() as api:
        entity, check = split_check(name)
        api.call("DELETE", f"/checks/{entity}/{check}/maintenances/{maintenance_id}")
        out.print(f"ended maintenance {maintenance_id}")


def ack(
    name: Annotated[str, typer.Argument(help="ENTITY:CHECK")],
    duration: Annotated[str, typer.Option(help="e.g. 4h")] = "4h",
    summary: Annotated[str, typer.Option()] = "",
) -> None:
    """Acknowledge a failing check: silence it until it recovers or the duration ends."""
    with api_client() as api:
        entity, check = split_check(name)
        api.call(
            "POST",
            f"/checks/{entity}/{check}/acknowledgements",
            json={"duration": parse_duration(duration), "summary": summary},
        )
        out.print(f"acknowledged {name} for {duration}")
