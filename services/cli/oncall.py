"""CLI for on-call schedules and escalation policies (docs/oncall.md).

``tocsin oncall [SCHEDULE] [--at TIME]`` says who is on call (every schedule,
or one by id or name); ``tocsin schedules …`` and ``tocsin policies …``
manage them, with the layers and steps given as JSON (``@file.json`` reads a
file), the shapes ``POST /schedules`` and ``POST /escalation-policies`` take.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from services.cli.client import ApiClient
from services.cli.output import JsonOpt, api_client, call_and_show, delete, fail, out, show
from services.cli.parsing import parse_duration, parse_time

schedules = typer.Typer(
    help="On-call schedules: rotations, layers, overrides.", no_args_is_help=True
)
policies = typer.Typer(
    help="Escalation policies: who is paged, in which order.", no_args_is_help=True
)


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


ONCALL_COLS = [
    ("schedule", lambda r: r["schedule"]),
    ("on call", lambda r: r["contact"] or r["contact_id"] or "nobody"),
    ("why", lambda r: r["source"]),
    ("until", lambda r: _when(r["until"])),
]
SCHEDULE_COLS = [
    ("id", lambda r: r["id"]),
    ("name", lambda r: r["name"]),
    ("timezone", lambda r: r["timezone"]),
    ("layers", lambda r: len(r["layers"])),
    ("overrides", lambda r: len(r["overrides"])),
]
POLICY_COLS = [
    ("id", lambda r: r["id"]),
    ("name", lambda r: r["name"]),
    ("steps", lambda r: len(r["steps"])),
    ("repeat", lambda r: r["repeat"]),
]
SHIFT_COLS = [
    ("from", lambda r: _when(r["start"])),
    ("to", lambda r: _when(r["end"])),
    ("on call", lambda r: r["contact_id"] or "nobody"),
    ("why", lambda r: r["source"]),
]


def _json_arg(value: str) -> Any:
    """JSON text, or ``@file.json``."""
    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}") from None


def _time(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _schedule_id(api: ApiClient, ref: str) -> str:
    found = [s for s in api.call("GET", "/schedules") if ref in (s["id"], s["name"])]
    if len(found) != 1:
        fail(f"no schedule {ref!r}" if not found else f"several schedules are called {ref!r}")
        raise typer.Exit(1)
    return str(found[0]["id"])


def oncall(
    schedule: Annotated[
        str | None, typer.Argument(help="Schedule id or name (default: all)")
    ] = None,
    at: Annotated[str | None, typer.Option(help="Epoch, ISO 8601 or now+1h (default: now)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who is on call now (or --at TIME), per schedule, and until when."""
    params = {} if at is None else {"at": _time(at)}
    with api_client() as api:
        if schedule is None:
            show(api.call("GET", "/oncall", params=params), ONCALL_COLS, as_json)
        else:
            sid = _schedule_id(api, schedule)
            show(api.call("GET", f"/schedules/{sid}/oncall", params=params), ONCALL_COLS, as_json)


@schedules.command("list")
def schedules_list(as_json: JsonOpt = False) -> None:
    call_and_show("GET", "/schedules", SCHEDULE_COLS, as_json)


@schedules.command("show")
def schedules_show(schedule: str, as_json: JsonOpt = False) -> None:
    """The schedule with its layers, overrides and calendar secret."""
    with api_client() as api:
        show(api.call("GET", f"/schedules/{_schedule_id(api, schedule)}"), SCHEDULE_COLS, as_json)


@schedules.command("create")
def schedules_create(
    name: str,
    layers: Annotated[
        str,
        typer.Option(
            help='JSON list: [{"members": [...], "shift_hours": 168, "handoff": "2026-12-07T09:00"}]'
        ),
    ],
    timezone: Annotated[str, typer.Option(help="IANA timezone of hand-offs")] = "UTC",
    as_json: JsonOpt = False,
) -> None:
    body = {"name": name, "timezone": timezone, "layers": _json_arg(layers)}
    call_and_show("POST", "/schedules", SCHEDULE_COLS, as_json, json=body)


@schedules.command("update")
def schedules_update(
    schedule: str,
    layers: Annotated[
        str | None, typer.Option(help="JSON list of layers (default: unchanged)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="New name")] = None,
    timezone: Annotated[str | None, typer.Option(help="New IANA timezone")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a schedule's name, zone or layers (overrides and calendar link stay)."""
    with api_client() as api:
        sid = _schedule_id(api, schedule)
        cur = api.call("GET", f"/schedules/{sid}")
        body = {
            "name": name or cur["name"],
            "timezone": timezone or cur["timezone"],
            "layers": _json_arg(layers) if layers is not None else cur["layers"],
        }
        show(api.call("PUT", f"/schedules/{sid}", json=body), SCHEDULE_COLS, as_json)


@schedules.command("delete-override")
def schedules_delete_override(schedule: str, override_id: str) -> None:
    with api_client() as api:
        sid = _schedule_id(api, schedule)
        api.call("DELETE", f"/schedules/{sid}/overrides/{override_id}")
        out.print(f"deleted override {override_id}")


@schedules.command("delete")
def schedules_delete(schedule: str) -> None:
    with api_client() as api:
        sid = _schedule_id(api, schedule)
        api.call("DELETE", f"/schedules/{sid}")
        out.print(f"deleted schedule {sid}")


@schedules.command("timeline")
def schedules_timeline(
    schedule: str,
    start: Annotated[str | None, typer.Option(help="Default: now")] = None,
    days: Annotated[int, typer.Option(help="How many days")] = 14,
    as_json: JsonOpt = False,
) -> None:
    """Who is on call when over the next DAYS days."""
    a = _time(start)
    with api_client() as api:
        sid = _schedule_id(api, schedule)
        params: dict[str, float] = {} if a is None else {"start": a}
        if a is not None:
            params["end"] = a + days * 86400
        elif days != 14:
            fail("--days needs --start")
            raise typer.Exit(2)
        show(api.call("GET", f"/schedules/{sid}/timeline", params=params), SHIFT_COLS, as_json)


@schedules.command("override")
def schedules_override(
    schedule: str,
    contact: Annotated[str, typer.Option(help="Contact id who covers")],
    start: Annotated[str, typer.Option(help="Epoch, ISO 8601 or now")],
    end: Annotated[str, typer.Option(help="Epoch, ISO 8601 or now+8h")],
    as_json: JsonOpt = False,
) -> None:
    """CONTACT covers the schedule from START to END (beats every layer)."""
    body = {"contact_id": contact, "start": _time(start), "end": _time(end)}
    with api_client() as api:
        sid = _schedule_id(api, schedule)
        got = api.call("POST", f"/schedules/{sid}/overrides", json=body)
        if as_json:
            out.print_json(json.dumps(got))
        else:
            out.print(
                f"override {got['id']}: {contact} from {_when(got['start'])} to {_when(got['end'])}"
            )


@schedules.command("import-ical")
def schedules_import_ical(
    schedule: str,
    feed: Annotated[str, typer.Argument(help="An .ics file, or an http(s) URL of a feed")],
    mode: Annotated[
        str, typer.Option(help="layer (a rotation) or overrides (shift by shift)")
    ] = "layer",
    days: Annotated[int, typer.Option(help="How many days of the feed, from now")] = 90,
    fetch_here: Annotated[
        bool,
        typer.Option(
            "--fetch-here",
            help="Fetch a URL from this machine and send its text (the layer is then not"
            " re-synced); by default the API fetches it and the layer remembers the URL",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a rotation from an iCalendar feed into SCHEDULE.

    A layer imported from a URL (without --fetch-here) is re-synced from it by
    `tocsin schedules sync` and periodically by the scheduler.
    """
    body: dict[str, object] = {"mode": mode, "days": days}
    if feed.startswith(("http://", "https://", "webcal://")) and not fetch_here:
        body["url"] = feed
    elif feed.startswith(("http://", "https://", "webcal://")):
        url = "https://" + feed.removeprefix("webcal://") if feed.startswith("webcal") else feed
        try:
            body["ics"] = httpx.get(url, timeout=30, follow_redirects=True).raise_for_status().text
        except httpx.HTTPError as exc:
            fail(f"cannot fetch {feed}: {exc}")
            raise typer.Exit(1) from None
    else:
        try:
            body["ics"] = Path(feed).read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read {feed}: {exc}")
            raise typer.Exit(1) from None
    with api_client() as api:
        sid = _schedule_id(api, schedule)
        got = api.call("POST", f"/schedules/{sid}/import-ical", json=body)
    if as_json:
        out.print_json(json.dumps(got))
        return
    if got["layer"]:
        layer = got["layer"]
        out.print(
            f"added a layer: {len(layer['members'])} members, {layer['shift_hours']} h shifts"
            f" from {layer['handoff']}"
        )
    else:
        out.print(f"added {got['overrides']} overrides")
    for summary in got["unmatched"]:
        out.print(f"not imported (names no contact): {summary}")


@schedules.command("sync")
def schedules_sync(
    schedule: str,
    days: Annotated[int, typer.Option(help="How many days of each feed, from now")] = 90,
    as_json: JsonOpt = False,
) -> None:
    """Re-fetch the feeds SCHEDULE's layers were imported from and replace their rotations."""
    with api_client() as api:
        sid = _schedule_id(api, schedule)
        got = api.call("POST", f"/schedules/{sid}/sync", params={"days": days})
    if as_json:
        out.print_json(json.dumps(got))
        return
    for x in got["layers"]:
        out.print(
            f"layer {x['layer']}: {len(x['members'])} members, {x['shift_hours']} h shifts"
            f" from {x['handoff']} ({x['url']})"
        )
        for summary in x["unmatched"]:
            out.print(f"  not imported (names no contact): {summary}")


@policies.command("list")
def policies_list(as_json: JsonOpt = False) -> None:
    call_and_show("GET", "/escalation-policies", POLICY_COLS, as_json)


@policies.command("show")
def policies_show(policy_id: str, as_json: JsonOpt = False) -> None:
    call_and_show("GET", f"/escalation-policies/{policy_id}", POLICY_COLS, as_json)


@policies.command("update")
def policies_update(
    policy_id: str,
    steps: Annotated[
        str | None, typer.Option(help="JSON list of steps (default: unchanged)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="New name")] = None,
    repeat: Annotated[int | None, typer.Option(help="New repeat count")] = None,
    as_json: JsonOpt = False,
) -> None:
    with api_client() as api:
        cur = api.call("GET", f"/escalation-policies/{policy_id}")
        body = {
            "name": name or cur["name"],
            "steps": _json_arg(steps) if steps is not None else cur["steps"],
            "repeat": cur["repeat"] if repeat is None else repeat,
        }
        show(api.call("PUT", f"/escalation-policies/{policy_id}", json=body), POLICY_COLS, as_json)


@policies.command("create")
def policies_create(
    name: str,
    steps: Annotated[
        str, typer.Option(help='JSON list: [{"targets": [{"schedule": ID}], "wait_s": 300}]')
    ],
    repeat: Annotated[int, typer.Option(help="Run the steps again this many times")] = 0,
    as_json: JsonOpt = False,
) -> None:
    body = {"name": name, "steps": _json_arg(steps), "repeat": repeat}
    call_and_show("POST", "/escalation-policies", POLICY_COLS, as_json, json=body)


@policies.command("simulate")
def policies_simulate(
    policy_id: str,
    at: Annotated[str | None, typer.Option(help="When the problem starts (default: now)")] = None,
    for_: Annotated[str, typer.Option("--for", help="How long nobody acknowledges")] = "1h",
    as_json: JsonOpt = False,
) -> None:
    """Who would be paged at AT, and after each wait without an ack (changes nothing)."""
    try:
        minutes = parse_duration(for_) / 60
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    params: dict[str, float] = {"minutes": minutes}
    if at is not None:
        params["at"] = _time(at) or 0.0
    with api_client() as api:
        steps = api.call("GET", f"/escalation-policies/{policy_id}/simulate", params=params)
        names = {c["id"]: c["name"] for c in api.all_items("/contacts")}
    if as_json:
        out.print_json(json.dumps(steps))
        return
    for s in steps:
        who = ", ".join(names.get(c, c) for c in s["paged"]) or "nobody"
        notes = f" ({'; '.join(s['notes'])})" if s["notes"] else ""
        out.print(f"{_when(s['time'])}  step {s['step']}: {who}{notes}")


@policies.command("delete")
def policies_delete(policy_id: str) -> None:
    delete(f"/escalation-policies/{policy_id}", f"escalation policy {policy_id}")


def register(app: typer.Typer) -> None:
    app.command("oncall")(oncall)
    app.add_typer(schedules, name="schedules")
    app.add_typer(policies, name="policies")
