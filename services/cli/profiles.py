"""CLI for Argus notification profiles and planned maintenance (``/api/v2/``, docs/profiles.md).

``tocsin profiles`` manages profiles, with ``filters``, ``destinations``,
``timeslots`` and ``media`` below it; ``tocsin planned-maintenance`` manages
Argus planned maintenance tasks (``tocsin maintenance`` is per-check
scheduled maintenance).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from services.cli.incidents import INCIDENT_COLS
from services.cli.output import JsonOpt, api_client, call_and_show, delete, out, show

BASE = "/api/v2/notificationprofiles"
MAINT = "/api/v2/plannedmaintenance"

profiles = typer.Typer(
    help="Argus notification profiles (who is told about which incidents).", no_args_is_help=True
)
filters = typer.Typer(help="Stored filters of notification profiles.", no_args_is_help=True)
destinations = typer.Typer(help="Destinations: a medium and its settings.", no_args_is_help=True)
timeslots = typer.Typer(help="Timeslots: when profiles are on.", no_args_is_help=True)
media_app = typer.Typer(help="Media that destinations can use.", no_args_is_help=True)
planned = typer.Typer(
    help="Argus planned maintenance: silence matching incidents.", no_args_is_help=True
)

PROFILE_COLS = [
    ("pk", lambda r: r["pk"]),
    ("name", lambda r: r["name"] or ""),
    ("active", lambda r: "yes" if r["active"] else "no"),
    ("timeslot", lambda r: (r["timeslot"] or {}).get("name", "?")),
    ("filters", lambda r: ",".join(f["name"] for f in r["filters"])),
    ("destinations", lambda r: ",".join(d["suggested_label"] for d in r["destinations"])),
    ("owner", lambda r: r.get("contact") or r.get("timezone") or "UTC"),
]
FILTER_COLS = [
    ("pk", lambda r: r["pk"]),
    ("name", lambda r: r["name"]),
    ("filter", lambda r: json.dumps(r["filter"])),
]
DEST_COLS = [
    ("pk", lambda r: r["pk"]),
    ("media", lambda r: r["media"]),
    ("label", lambda r: r["label"] or r["suggested_label"]),
    ("settings", lambda r: json.dumps(r["settings"])),
]
MAINT_COLS = [
    ("pk", lambda r: r["pk"]),
    ("start", lambda r: r["start_time"][:19].replace("T", " ")),
    (
        "end",
        lambda r: (
            r["end_time"] if r["end_time"] == "infinity" else r["end_time"][:19].replace("T", " ")
        ),
    ),
    ("filters", lambda r: ",".join(str(f) for f in r["filters"])),
    ("description", lambda r: r["description"][:60]),
]


def _json_arg(value: str) -> Any:
    """JSON text, or ``@file.json``."""
    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}") from None


# --------------------------------------------------------------------------- profiles


@profiles.command("list")
def profiles_list(as_json: JsonOpt = False) -> None:
    call_and_show("GET", f"{BASE}/", PROFILE_COLS, as_json)


@profiles.command("show")
def profiles_show(pk: int, as_json: JsonOpt = False) -> None:
    call_and_show("GET", f"{BASE}/{pk}/", PROFILE_COLS, as_json)


@profiles.command("create")
def profiles_create(
    timeslot: Annotated[int, typer.Option(help="Timeslot pk")],
    filter_: Annotated[
        list[int], typer.Option("--filter", help="Filter pk (repeat: all must fit)")
    ],
    destination: Annotated[list[int] | None, typer.Option(help="Destination pk (repeat)")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    contact: Annotated[str | None, typer.Option(help="Owner contact id (its timezone)")] = None,
    timezone: Annotated[str | None, typer.Option(help="Timezone when there is no owner")] = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Create switched off")] = False,
    escalation_policy: Annotated[
        str | None, typer.Option(help="Escalation policy id a matching problem starts")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    body = {
        "name": name,
        "timeslot": timeslot,
        "filters": filter_,
        "destinations": destination or [],
        "active": not inactive,
        "contact": contact,
        "timezone": timezone,
        "escalation_policy": escalation_policy,
    }
    call_and_show("POST", f"{BASE}/", PROFILE_COLS, as_json, json=body)


def _set_active(pk: int, active: bool) -> None:
    with api_client() as api:
        cur = api.call("GET", f"{BASE}/{pk}/")
        body = {
            "name": cur["name"],
            "timeslot": cur["timeslot"]["pk"],
            "filters": [f["pk"] for f in cur["filters"]],
            "destinations": [d["pk"] for d in cur["destinations"]],
            "active": active,
            "contact": cur.get("contact"),
            "timezone": cur.get("timezone"),
            "escalation_policy": cur.get("escalation_policy"),  # keep it: PUT replaces
        }
        api.call("PUT", f"{BASE}/{pk}/", json=body)
        out.print(f"profile {pk} {'enabled' if active else 'disabled'}")


@profiles.command("enable")
def profiles_enable(pk: int) -> None:
    _set_active(pk, True)


@profiles.command("disable")
def profiles_disable(pk: int) -> None:
    """Switch a profile off (e.g. on holiday) without deleting it."""
    _set_active(pk, False)


@profiles.command("delete")
def profiles_delete(pk: int) -> None:
    delete(f"{BASE}/{pk}/", f"profile {pk}")


@profiles.command("incidents")
def profiles_incidents(pk: int, as_json: JsonOpt = False) -> None:
    """Incidents any of the profile's filters matches now."""
    call_and_show("GET", f"{BASE}/{pk}/incidents/", INCIDENT_COLS, as_json)


# --------------------------------------------------------------------------- filters


@filters.command("list")
def filters_list(as_json: JsonOpt = False) -> None:
    call_and_show("GET", f"{BASE}/filters/", FILTER_COLS, as_json)


@filters.command("create")
def filters_create(
    name: str,
    blob: Annotated[str, typer.Argument(help="Filter JSON (or @file), e.g. '{\"maxlevel\": 2}'")],
    as_json: JsonOpt = False,
) -> None:
    with api_client() as api:
        made = api.call("POST", f"{BASE}/filters/", json={"name": name, "filter": _json_arg(blob)})
        show(made, FILTER_COLS, as_json)


@filters.command("delete")
def filters_delete(pk: int) -> None:
    delete(f"{BASE}/filters/{pk}/", f"filter {pk}")


@filters.command("preview")
def filters_preview(
    blob: Annotated[str, typer.Argument(help="Filter JSON (or @file)")], as_json: JsonOpt = False
) -> None:
    """Incidents the filter matches now (tags: the incident must carry all of them)."""
    with api_client() as api:
        show(
            api.call("POST", f"{BASE}/filterpreview/", json=_json_arg(blob)), INCIDENT_COLS, as_json
        )


# --------------------------------------------------------------------------- destinations, media, timeslots


@destinations.command("list")
def destinations_list(as_json: JsonOpt = False) -> None:
    call_and_show("GET", f"{BASE}/destinations/", DEST_COLS, as_json)


@destinations.command("create")
def destinations_create(
    media: Annotated[str, typer.Argument(help="email, sms, webhook, slack, pagerduty")],
    settings: Annotated[str, typer.Argument(help='Settings JSON, e.g. \'{"url": "https://…"}\'')],
    label: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    body = {"media": media, "settings": _json_arg(settings), "label": label}
    call_and_show("POST", f"{BASE}/destinations/", DEST_COLS, as_json, json=body)


@destinations.command("delete")
def destinations_delete(pk: int) -> None:
    delete(f"{BASE}/destinations/{pk}/", f"destination {pk}")


@media_app.command("list")
def media_list(as_json: JsonOpt = False) -> None:
    """Media, whether a gateway is installed, and the settings they take."""
    with api_client() as api:
        rows = api.call("GET", f"{BASE}/media/")
        cols = [
            ("slug", lambda r: r["slug"]),
            ("installed", lambda r: "yes" if r["installed"] else "no"),
            ("settings", lambda r: ",".join(r["json_schema"]["properties"])),
        ]
        show(rows, cols, as_json)


@timeslots.command("list")
def timeslots_list(as_json: JsonOpt = False) -> None:
    cols = [
        ("pk", lambda r: r["pk"]),
        ("name", lambda r: r["name"]),
        (
            "recurrences",
            lambda r: "; ".join(
                f"{','.join(map(str, t['days']))} {'all day' if t['all_day'] else t['start'] + '-' + t['end']}"
                for t in r["time_recurrences"]
            ),
        ),
    ]
    call_and_show("GET", f"{BASE}/timeslots/", cols, as_json)


@timeslots.command("create")
def timeslots_create(
    name: str,
    recurrences: Annotated[
        str,
        typer.Argument(
            help='JSON list, e.g. \'[{"days": [1,2,3,4,5], "start": "22:00", "end": "06:00"}]\''
        ),
    ],
) -> None:
    """A timeslot; ``start > end`` is one span across midnight."""
    with api_client() as api:
        made = api.call(
            "POST",
            f"{BASE}/timeslots/",
            json={"name": name, "time_recurrences": _json_arg(recurrences)},
        )
        out.print(f"timeslot {made['name']} (pk {made['pk']})")


# --------------------------------------------------------------------------- planned maintenance


@planned.command("list")
def planned_list(as_json: JsonOpt = False) -> None:
    call_and_show("GET", f"{MAINT}/", MAINT_COLS, as_json)


@planned.command("create")
def planned_create(
    start: Annotated[str, typer.Option(help="ISO-8601 start")],
    filter_: Annotated[list[int], typer.Option("--filter", help="Filter pk (repeat: any matches)")],
    end: Annotated[str | None, typer.Option(help="ISO-8601 end (default: open-ended)")] = None,
    description: str = "",
    as_json: JsonOpt = False,
) -> None:
    body = {"start_time": start, "end_time": end, "filters": filter_, "description": description}
    call_and_show("POST", f"{MAINT}/", MAINT_COLS, as_json, json=body)


@planned.command("end")
def planned_end(pk: int, at: Annotated[str, typer.Option(help="ISO-8601 end")]) -> None:
    """End a task (set its end time); ongoing tasks cannot be deleted."""
    with api_client() as api:
        api.call("PATCH", f"{MAINT}/{pk}/", json={"end_time": at})
        out.print(f"planned maintenance {pk} ends at {at}")


@planned.command("delete")
def planned_delete(pk: int) -> None:
    """Delete a task that has not started yet."""
    delete(f"{MAINT}/{pk}/", f"planned maintenance {pk}")


def register(app: typer.Typer) -> None:
    profiles.add_typer(filters, name="filters")
    profiles.add_typer(destinations, name="destinations")
    profiles.add_typer(timeslots, name="timeslots")
    profiles.add_typer(media_app, name="media")
    app.add_typer(profiles, name="profiles")
    app.add_typer(planned, name="planned-maintenance")
