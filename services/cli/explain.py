"""``tocsin explain`` and ``tocsin simulate``: why a page went out or did not, and what would happen.

Both print what the API returns (``GET /checks/{entity}/{check}/explain``,
``POST /simulate``) as a table with times on the operator's clock, or the JSON
itself with ``--json``.  Reason texts are the pipeline's own; only the epoch
timestamps inside them are shown as local times.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from services.cli.output import JsonOpt, api_client
from services.cli.parsing import parse_time, split_check
from shared.explain.display import humanize, local_time
from shared.timeslots import zone

# Reasons are long: piped output (no terminal to measure) gets a wide table instead of 80 columns.
out = Console() if sys.stdout.isatty() else Console(width=200)
err = Console(stderr=True)

TzOpt = Annotated[
    str | None,
    typer.Option("--tz", help="IANA timezone for times, e.g. Europe/Oslo (default: local)"),
]


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return zone(name)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _who(route: dict[str, Any]) -> str:
    who = route.get("contact") or route.get("contact_id") or ""
    medium = route.get("medium_type") or ""
    return f"{who} / {medium}" if who and medium else who or medium or "-"


def timeline_rows(items: list[dict[str, Any]], tz: ZoneInfo | None) -> list[tuple[str, ...]]:
    """(time, what, decision, who, why) per record; a notification gives one row per verdict."""
    rows: list[tuple[str, ...]] = []
    for it in items:
        t = local_time(it["time"], tz)
        kind = it.get("kind")
        if kind == "event":
            what = f"event {it['state']}" if it["type"] == "service" else f"action {it['state']}"
            decision = f"{it['filter']}: {it['outcome']}"
            if it.get("notification_type"):
                decision += f" -> {it['notification_type']}"
            rows.append((t, what, decision, "-", humanize(it["reason"], tz)))
        elif kind == "notification":
            what = f"{it['type']} {it['state']} ({it['severity']})"
            routes = it.get("routes") or [
                {"verdict": "suppress", "code": "none", "text": "no contact considered"}
            ]
            for route in routes:
                decision = route["verdict"] if route["verdict"] == "deliver" else route["code"]
                rows.append((t, what, decision, _who(route), humanize(route["text"], tz)))
                t, what = "", ""
        elif kind == "escalation":
            what = f"escalation step {it['step']}"
            who = ", ".join(it.get("paged") or []) or "-"
            on_call = "; ".join(
                f"on call: {v or 'nobody'}" for v in (it.get("on_call") or {}).values()
            )
            why = "; ".join(
                [*(it.get("why") or []), *([on_call] if on_call else []), it.get("reason") or ""]
            )
            rows.append((t, what, it["outcome"], who, why.strip("; ") or "-"))
        elif kind == "delivery":
            rows.append(
                (
                    t,
                    f"delivery {it['type']}",
                    it["outcome"],
                    f"{it.get('contact_id') or '-'} / {it['medium_type']} {it['address']}",
                    it["text"],
                )
            )
    return rows


def _table(title: str, rows: list[tuple[str, ...]]) -> Table:
    table = Table("time", "what", "decision", "who", "why", title=title, title_justify="left")
    for row in rows:
        table.add_row(*row)
    return table


def explain(
    name: Annotated[str, typer.Argument(help="ENTITY:CHECK")],
    since: Annotated[str, typer.Option(help="how far back: 1h, 30m, 2d, all")] = "24h",
    tz: TzOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Why a check's pages went out or did not: events, decisions, notifications, deliveries."""
    zone_ = _zone(tz)
    with api_client() as api:
        entity, check = split_check(name)
        body = api.call("GET", f"/checks/{entity}/{check}/explain", params={"since": since})
    if as_json:
        out.print_json(json.dumps(body))
        return
    rows = timeline_rows(body["items"], zone_)
    since_text = f"since {local_time(body['since'], zone_)}" if body["since"] > 0 else "(all kept)"
    if not rows:
        out.print(f"nothing recorded for {name} {since_text}")
        return
    out.print(_table(f"{name} {since_text}", rows))


def simulate(
    event: Annotated[
        str, typer.Option("--event", help="One event as JSON, as `tocsin send` takes it.")
    ],
    at: Annotated[
        str | None, typer.Option("--time", help="epoch, ISO 8601 or now+1h (default: now)")
    ] = None,
    tz: TzOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Dry run: what would happen to this event now (or at --time)? Nothing is changed."""
    zone_ = _zone(tz)
    try:
        payload: dict[str, Any] = {"event": json.loads(event)}
        if at is not None:
            payload["time"] = parse_time(at)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        err.print(f"[red]--event/--time: {exc}[/red]")
        raise typer.Exit(2) from None
    with api_client() as api:
        body = api.call("POST", "/simulate", json=payload)
    if as_json:
        out.print_json(json.dumps(body))
        return
    print_dry_run(body, zone_)


def print_dry_run(body: dict[str, Any], tz: ZoneInfo | None) -> None:
    """The dry run in words: the processor's verdict, then every contact and medium."""
    proc = body.get("processor") or {}
    when = local_time(body["time"], tz)
    name = f"{body['entity']}:{body['check']}"
    if body["would_notify"]:
        out.print(
            f"{name} at {when}: the processor WOULD notify "
            f"({body.get('notification_type')}, severity {body.get('severity')})"
        )
    else:
        out.print(f"{name} at {when}: the processor would NOT notify")
    if proc:
        out.print(f"  {proc['filter']}: {proc['outcome']} - {humanize(proc['reason'], tz)}")
    if not body["would_notify"]:
        return
    routes = (body.get("notifier") or {}).get("routes", [])
    why = {
        (r["contact_id"], r["medium_id"]): r["text"] for r in routes if r["verdict"] == "deliver"
    }
    rows: list[tuple[str, ...]] = []
    for r in body.get("recipients", []):
        text = why.get((r["contact_id"], r["medium_id"]), "")
        rows.append(("yes", f"{r['contact']} / {r['medium_type']}", r["type"], humanize(text, tz)))
    for r in [*routes, *body.get("others", [])]:
        if r["verdict"] != "deliver":
            rows.append(("no", _who(r), r["code"], humanize(r["text"], tz)))
    table = Table("notified", "who", "type / code", "why", title="contacts and media")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add ``explain`` and ``simulate`` to the ``tocsin`` command."""
    app.command("explain")(explain)
    app.command("simulate")(simulate)
