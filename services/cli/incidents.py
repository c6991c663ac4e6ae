"""CLI for incidents (Argus API) and sources (Argus source systems and declared JSON sources)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from services.cli.client import ApiClient
from services.cli.output import JsonOpt, api_client, delete, out, show
from services.cli.parsing import parse_duration

ARGUS = "/api/v2"

incidents = typer.Typer(
    help="Incidents: failure episodes of checks and incidents from Argus sources.",
    no_args_is_help=True,
)
sources = typer.Typer(
    help="Sources: Argus source systems and declared JSON webhook sources.", no_args_is_help=True
)

# Argus levels as an operator says them (docs/argus.md: 1-2 critical, 3 warning, 4-5 unknown).
LEVEL_NAMES = {1: "critical", 2: "critical", 3: "warning", 4: "unknown", 5: "unknown"}


def level_name(level: int) -> str:
    """``critical (1)``: the severity first, the Argus number for those who filter by it."""
    return f"{LEVEL_NAMES.get(level, '?')} ({level})"


INCIDENT_COLS = [
    ("pk", lambda r: r["pk"]),
    ("start", lambda r: r["start_time"][:19].replace("T", " ")),
    (
        "end",
        lambda r: (
            "open"
            if r["end_time"] == "infinity"
            else (r["end_time"] or "stateless")[:19].replace("T", " ")
        ),
    ),
    ("level", lambda r: level_name(r["level"])),
    ("check", lambda r: r.get("check") or "-"),
    ("source", lambda r: r["source"]["name"]),
    ("acked", lambda r: "yes" if r["acked"] else ""),
    ("description", lambda r: (r["description"] or "")[:60]),
    ("tags", lambda r: ",".join(t["tag"] for t in r["tags"])),
]


def _all_pages(
    api: ApiClient, path: str, params: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    """Follow Argus cursor pages until ``limit`` items or the end."""
    page = api.call("GET", path, params={**params, "page_size": min(limit, 100)})
    items = list(page["results"])
    while page.get("next") and len(items) < limit:
        page = api.call("GET", page["next"])
        items.extend(page["results"])
    return items[:limit]


@incidents.command("list")
def incidents_list(
    open_: Annotated[bool | None, typer.Option("--open/--closed", show_default=False)] = None,
    acked: Annotated[bool | None, typer.Option("--acked/--unacked", show_default=False)] = None,
    level_lte: Annotated[
        int | None, typer.Option(help="Only levels <= this (1 critical .. 5)")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="k=v; same key OR, different keys AND")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source system name")] = None,
    limit: int = 100,
    as_json: JsonOpt = False,
) -> None:
    params: dict[str, Any] = {}
    if open_ is not None:
        params["open"] = str(open_).lower()
    if acked is not None:
        params["acked"] = str(acked).lower()
    if level_lte is not None:
        params["level__lte"] = level_lte
    if tag:
        params["tags"] = ",".join(tag)
    if source:
        params["source__name__in"] = source
    with api_client() as api:
        show(_all_pages(api, f"{ARGUS}/incidents/", params, limit), INCIDENT_COLS, as_json)


@incidents.command("show")
def incidents_show(pk: int, as_json: JsonOpt = False) -> None:
    """One incident and its event log."""
    with api_client() as api:
        incident = api.call("GET", f"{ARGUS}/incidents/{pk}/")
        events = api.call("GET", f"{ARGUS}/incidents/{pk}/events/")
        if as_json:
            out.print_json(json.dumps({"incident": incident, "events": events}))
            return
        show(incident, INCIDENT_COLS, False)
        show(
            events,
            [
                ("time", lambda e: e["timestamp"][:19].replace("T", " ")),
                ("type", lambda e: e["type"]["display"]),
                ("by", lambda e: e["actor"]["username"]),
                ("description", lambda e: e["description"][:80]),
            ],
            False,
        )


def _event(pk: int, etype: str, description: str) -> None:
    with api_client() as api:
        api.call(
            "POST",
            f"{ARGUS}/incidents/{pk}/events/",
            json={
                "type": etype,
                "description": description,
                "timestamp": datetime.now(UTC).isoformat(),
            },
        )
        out.print(f"incident {pk}: {etype} recorded")


@incidents.command("close")
def incidents_close(pk: int, comment: Annotated[str, typer.Option()] = "") -> None:
    """Close an incident by hand (Argus CLO)."""
    _event(pk, "CLO", comment)


@incidents.command("reopen")
def incidents_reopen(pk: int, comment: Annotated[str, typer.Option()] = "") -> None:
    """Reopen a closed incident (Argus REO)."""
    _event(pk, "REO", comment)


@incidents.command("comment")
def incidents_comment(pk: int, text: str) -> None:
    """Add a comment to the incident's log (Argus OTH)."""
    _event(pk, "OTH", text)


@incidents.command("ack")
def incidents_ack(
    pk: int,
    comment: Annotated[str, typer.Option()] = "",
    duration: Annotated[
        str | None, typer.Option(help="Expire after e.g. 4h (default: never)")
    ] = None,
) -> None:
    """Acknowledge an incident (its check is acknowledged too)."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {"description": comment, "timestamp": now.isoformat()}
    if duration:
        body["expiration"] = datetime.fromtimestamp(
            now.timestamp() + parse_duration(duration), UTC
        ).isoformat()
    with api_client() as api:
        api.call("POST", f"{ARGUS}/incidents/{pk}/acks/", json=body)
        out.print(f"incident {pk} acknowledged")


# ------------------------------------------------------------------------------ sources


@sources.command("list")
def sources_list(as_json: JsonOpt = False) -> None:
    """Argus source systems and declared JSON sources."""
    with api_client() as api:
        argus = api.call("GET", f"{ARGUS}/incidents/sources/")
        declared = api.all_items("/sources")
        rows = [
            {"kind": "argus", "name": s["name"], "type": s["type"]["name"], "id": s["pk"]}
            for s in argus
        ]
        rows += [
            {"kind": "json", "name": s["name"], "type": "mapping", "id": s["events_url"]}
            for s in declared
        ]
        show(
            rows,
            [
                ("kind", lambda r: r["kind"]),
                ("name", lambda r: r["name"]),
                ("type", lambda r: r["type"]),
                ("pk / events url", lambda r: r["id"]),
            ],
            as_json,
        )


@sources.command("create-argus")
def sources_create_argus(
    name: str, type_: Annotated[str, typer.Option("--type", help="e.g. nav, zabbix")] = "argus"
) -> None:
    """Create an Argus source system; prints its API token once."""
    with api_client() as api:
        made = api.call("POST", f"{ARGUS}/incidents/sources/", json={"name": name, "type": type_})
        out.print(f"source {made['name']} (pk {made['pk']}) token: {made['token']}")
        out.print(
            "the token is shown only now; give it to the glue service (Authorization: Token <token>)"
        )


@sources.command("create")
def sources_create(
    name: str,
    mapping: Annotated[str, typer.Option(help="Mapping as JSON, or @file.json")],
) -> None:
    """Declare a JSON webhook source with a field mapping; prints its token once."""
    text = Path(mapping[1:]).read_text(encoding="utf-8") if mapping.startswith("@") else mapping
    with api_client() as api:
        made = api.call("POST", "/sources", json={"name": name, "mapping": json.loads(text)})
        out.print(f"source {made['name']}: post payloads to {made['events_url']}")
        out.print(f"token (shown once): {made['token']}")


@sources.command("delete")
def sources_delete(name: str) -> None:
    """Delete a declared JSON source."""
    delete(f"/sources/{name}", f"source {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(incidents, name="incidents")
    app.add_typer(sources, name="sources")
