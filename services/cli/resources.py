"""CLI commands over the management API: contacts, media, rules, checks, maintenance, acks, logs.

Every listing prints a table, or the API's JSON with ``--json``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from services.cli.client import ApiCallFailed, ApiClient
from services.cli.ids import resolve
from services.cli.parsing import (
    describe_recurrence,
    pairs,
    parse_duration,
    parse_recurrence,
    parse_time,
    split_check,
)
from shared.config import Settings
from shared.errors import ConfigError

out = Console()
err = Console(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]


def fail(problem: object) -> None:
    """An error line on stderr, printed as is: no markup (messages contain brackets), and
    never wrapped or cut at the terminal's width (paths and URLs in it are copied)."""
    err.print(str(problem), style="red", markup=False, highlight=False, soft_wrap=True)


@contextmanager
def api_client() -> Iterator[ApiClient]:
    """An API client; API and configuration errors end the command with a readable message."""
    try:
        client = ApiClient(Settings.from_env())
    except (ConfigError, ApiCallFailed) as exc:
        fail(exc)
        raise typer.Exit(2) from None
    try:
        yield client
    except ApiCallFailed as exc:
        fail(exc)
        raise typer.Exit(1) from None
    except ValueError as exc:
        fail(exc)
        raise typer.Exit(2) from None
    finally:
        client.close()


# Ids are never cut (people copy them); long texts get room instead of a word per line.
ID_COLUMNS = frozenset({"id", "message id", "incident"})
ID_WIDTH = 16
TEXT_COLUMNS = frozenset({"summary", "error", "reason", "why", "description"})


Columns = Sequence[tuple[str, Callable[[dict[str, Any]], Any]]]


def show(
    rows: Sequence[dict[str, Any]] | dict[str, Any],
    columns: Sequence[tuple[str, Callable[[dict[str, Any]], Any]]],
    as_json: bool,
) -> None:
    if as_json:
        out.print_json(json.dumps(rows))
        return
    items = [rows] if isinstance(rows, dict) else list(rows)
    table = Table()
    for name, _ in columns:
        if name in ID_COLUMNS:
            table.add_column(name, no_wrap=True, min_width=ID_WIDTH)
        elif name in TEXT_COLUMNS:
            table.add_column(name, min_width=24, overflow="fold")
        else:
            table.add_column(name)
    for row in items:
        table.add_row(*("" if (v := get(row)) is None else str(v) for _, get in columns))
    out.print(table)
    if isinstance(rows, list):
        out.print(f"{len(rows)} item(s)")


def with_names(api: ApiClient, columns: Columns) -> Columns:
    """``columns`` with the ``contact`` column showing the contact's name instead of its id."""
    names = {c["id"]: c["name"] for c in api.all_items("/contacts")}
    return [
        (
            name,
            (lambda r: names.get(r["contact_id"], r["contact_id"])) if name == "contact" else get,
        )
        for name, get in columns
    ]


def when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


# ------------------------------------------------------------------------------ contacts

contacts = typer.Typer(help="Contacts: people or teams to notify.", no_args_is_help=True)
CONTACT_COLS = [
    ("id", lambda r: r["id"]),
    ("name", lambda r: r["name"]),
    ("email", lambda r: r.get("email")),
    ("timezone", lambda r: r["timezone"]),
    ("tags", lambda r: ",".join(r["tags"])),
]


@contacts.command("list")
def contacts_list(as_json: JsonOpt = False) -> None:
    with api_client() as api:
        show(api.all_items("/contacts"), CONTACT_COLS, as_json)


ContactArg = Annotated[str, typer.Argument(help="Contact id, a unique prefix of it, or the name")]
MediumArg = Annotated[str, typer.Argument(help="Medium id or a unique prefix of it")]
RuleArg = Annotated[str, typer.Argument(help="Rule id or a unique prefix of it")]
CONTACT_HELP = "Contact id, a unique prefix of it, or the name"


@contacts.command("show")
def contacts_show(contact_id: ContactArg, as_json: JsonOpt = False) -> None:
    """A contact with its media and rules (``--json``: the contact plus ``media`` and ``rules``)."""
    with api_client() as api:
        cid = resolve(api, "contact", contact_id)
        contact = api.call("GET", f"/contacts/{cid}")
        its_media = api.all_items("/media", contact_id=cid)
        its_rules = api.all_items("/rules", contact_id=cid)
        if as_json:
            show({**contact, "media": its_media, "rules": its_rules}, CONTACT_COLS, True)
            return
        show(contact, CONTACT_COLS, False)
        out.print("media:")
        show(its_media, [c for c in MEDIUM_COLS if c[0] != "contact"], False)
        out.print("rules:")
        show(its_rules, [c for c in RULE_COLS if c[0] != "contact"], False)


@contacts.command("create")
def contacts_create(
    name: Annotated[str, typer.Option()],
    email: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[str, typer.Option(help="IANA name, e.g. Europe/Oslo")] = "UTC",
    tag: Annotated[list[str] | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    with api_client() as api:
        body = {
            "name": name,
            "timezone": timezone,
            "tags": tag or [],
            **({"email": email} if email else {}),
        }
        show(api.call("POST", "/contacts", json=body), CONTACT_COLS, as_json)


@contacts.command("update")
def contacts_update(
    contact_id: ContactArg,
    name: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    with api_client() as api:
        body = {
            k: v
            for k, v in {"name": name, "email": email, "timezone": timezone}.items()
            if v is not None
        }
        cid = resolve(api, "contact", contact_id)
        show(api.call("PATCH", f"/contacts/{cid}", json=body), CONTACT_COLS, as_json)


@contacts.command("delete")
def contacts_delete(contact_id: ContactArg) -> None:
    """Delete a contact with its media and rules."""
    with api_client() as api:
        cid = resolve(api, "contact", contact_id)
        api.call("DELETE", f"/contacts/{cid}")
        out.print(f"deleted contact {cid}")


# ------------------------------------------------------------------------------ media

media = typer.Typer(
    help="Media: how a contact is reached (email, webhook, slack, pagerduty, sms).",
    no_args_is_help=True,
)
MEDIUM_COLS = [
    ("id", lambda r: r["id"]),
    ("contact", lambda r: r["contact_id"]),
    ("type", lambda r: r["type"]),
    ("address", lambda r: r["address"]),
    ("interval", lambda r: r["interval"]),
    ("rollup", lambda r: r.get("rollup_threshold")),
]


@media.command("list")
def media_list(
    contact: Annotated[str | None, typer.Option(help=CONTACT_HELP)] = None,
    as_json: JsonOpt = False,
) -> None:
    with api_client() as api:
        params = {"contact_id": resolve(api, "contact", contact)} if contact else {}
        show(api.all_items("/media", **params), with_names(api, MEDIUM_COLS), as_json)


@media.command("create")
def media_create(
    contact: Annotated[str, typer.Option(help=CONTACT_HELP)],
    type_: Annotated[str, typer.Option("--type")],
    address: Annotated[str, typer.Option()],
    interval: Annotated[str, typer.Option(help="Minimum gap between repeats, e.g. 15m")] = "15m",
    rollup_threshold: Annotated[int | None, typer.Option()] = None,
    setting: Annotated[list[str] | None, typer.Option(help="key=value; repeatable")] = None,
    as_json: JsonOpt = False,
) -> None:
    with api_client() as api:
        body = {
            "contact_id": resolve(api, "contact", contact),
            "type": type_,
            "address": address,
            "interval": parse_duration(interval),
            "rollup_threshold": rollup_threshold,
            "settings": pairs(setting),
        }
        made = api.call("POST", "/media", json=body)
        show(made, MEDIUM_COLS, as_json)
        for warning in made.get("warnings") or []:
            err.print(f"warning: {warning}", style="yellow", markup=False, highlight=False)


@media.command("delete")
def media_delete(medium_id: MediumArg) -> None:
    with api_client() as api:
        mid = resolve(api, "medium", medium_id)
        api.call("DELETE", f"/media/{mid}")
        out.print(f"deleted medium {mid}")


@media.command("test")
def media_test(
    medium_id: MediumArg,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the outcome.")] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Send one test message to a medium now and print how the delivery went."""
    with api_client() as api:
        mid = resolve(api, "medium", medium_id)
        sent = api.call("POST", f"/media/{mid}/test")
        if not as_json:
            out.print(f"test message queued for medium {mid}; waiting for the gateway ...")
        entry = wait_for_delivery(api, sent, timeout)
    if as_json:
        out.print_json(json.dumps({**sent, "outcome": entry}))
    if entry is None:
        fail(
            f"no outcome within {timeout:.0f} s: is the gateway for this medium's type running? "
            "(`tocsin check` lists the queues and their consumers)"
        )
        raise typer.Exit(1)
    if not as_json:
        show(entry, DELIVERY_COLS, False)
    if entry["outcome"] != "delivered":
        raise typer.Exit(1)


def wait_for_delivery(
    api: ApiClient, sent: dict[str, Any], timeout: float
) -> dict[str, Any] | None:
    """The final delivery-log entry of ``sent["delivery_id"]`` (retries are waited out)."""
    deadline = time.monotonic() + timeout
    params = {"entity": sent["entity"], "check": sent["check"], "limit": 100}
    while time.monotonic() < deadline:
        for entry in api.call("GET", "/deliveries", params=params)["items"]:
            if entry.get("delivery_id") == sent["delivery_id"] and entry["outcome"] != "retry":
                return dict(entry)
        time.sleep(0.5)
    return None


# ------------------------------------------------------------------------------ rules


class TagStrategyOpt(StrEnum):
    """How a rule's tags match (``Rule.tag_strategy``)."""

    all = "all"
    any = "any"
    none = "none"


rules = typer.Typer(
    help="Notification rules: which checks, when, on which media.", no_args_is_help=True
)


def _route(r: dict[str, Any], sev: str) -> str:
    route = r[sev]
    return "BLACKHOLE" if route["blackhole"] else ",".join(route["media"]) or "-"


def _tags(r: dict[str, Any]) -> str:
    """``a,b`` (all present), ``any:a,b`` or ``none:buf``; ``any`` when the rule has no tags."""
    tags = ",".join(r["tags"])
    strategy = r.get("tag_strategy", "all")
    if not tags:
        return "any"
    return tags if strategy == "all" else f"{strategy}:{tags}"


RULE_COLS = [
    ("id", lambda r: r["id"]),
    ("contact", lambda r: r["contact_id"]),
    ("entities", lambda r: ",".join(r["entities"]) or "any"),
    ("tags", lambda r: _tags(r)),
    (
        "when",
        lambda r: "; ".join(describe_recurrence(t) for t in r["time_restrictions"]) or "always",
    ),
    ("critical", lambda r: _route(r, "critical")),
    ("warning", lambda r: _route(r, "warning")),
    ("unknown", lambda r: _route(r, "unknown")),
]


@rules.command("list")
def rules_list(
    contact: Annotated[str | None, typer.Option(help=CONTACT_HELP)] = None,
    as_json: JsonOpt = False,
) -> None:
    with api_client() as api:
        params = {"contact_id": resolve(api, "contact", contact)} if contact else {}
        show(api.all_items("/rules", **params), with_names(api, RULE_COLS), as_json)


@rules.command("create")
def rules_create(
    contact: Annotated[str, typer.Option(help=CONTACT_HELP)],
    entity: Annotated[
        list[str] | None, typer.Option(help="Entity name; repeatable (none: any)")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="Tag the check must carry; repeatable")
    ] = None,
    tag_strategy: Annotated[
        TagStrategyOpt,
        typer.Option(help="all: every --tag present; any: at least one; none: none of them"),
    ] = TagStrategyOpt.all,
    critical: Annotated[
        str, typer.Option(help="Media types, comma-separated, or 'blackhole'")
    ] = "",
    warning: Annotated[str, typer.Option()] = "",
    unknown: Annotated[str, typer.Option()] = "",
    when_: Annotated[
        list[str] | None, typer.Option("--when", help="e.g. 'mon-fri 08:00-16:00'; repeatable")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    def route(spec: str) -> dict[str, Any]:
        if spec.strip() == "blackhole":
            return {"media": [], "blackhole": True}
        return {"media": [m.strip() for m in spec.split(",") if m.strip()], "blackhole": False}

    with api_client() as api:
        body = {
            "contact_id": resolve(api, "contact", contact),
            "entities": entity or [],
            "tags": tag or [],
            "tag_strategy": tag_strategy.value,
            "time_restrictions": [parse_recurrence(w) for w in when_ or []],
            "critical": route(critical),
            "warning": route(warning),
            "unknown": route(unknown),
        }
        show(api.call("POST", "/rules", json=body), RULE_COLS, as_json)


@rules.command("delete")
def rules_delete(rule_id: RuleArg) -> None:
    with api_client() as api:
        rid = resolve(api, "rule", rule_id)
        api.call("DELETE", f"/rules/{rid}")
        out.print(f"deleted rule {rid}")


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


# ------------------------------------------------------------------------------ ack, logs, import/export


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


def export(fmt: Annotated[str, typer.Option("--format", help="yaml or json")] = "yaml") -> None:
    """Print the whole configuration (contacts with their media and rules)."""
    from services.cli.config_file import dump_yaml
    from services.cli.config_io import export_config

    with api_client() as api:
        data = export_config(api)
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(dump_yaml(data))


def import_(
    file: Annotated[
        Path, typer.Argument(help="YAML or JSON file from `tocsin export`; '-' for stdin")
    ],
    prune: Annotated[bool, typer.Option(help="Delete what the file does not mention.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Say what would change; change nothing.")] = False,
    update_secrets: Annotated[
        bool, typer.Option(help="Overwrite stored secrets of existing media.")
    ] = False,
) -> None:
    """Make the configuration match FILE (idempotent; validates the whole file first)."""
    from services.cli.config_io import ImportRefused, import_config

    text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        err.print(f"[red]{file}: not valid YAML/JSON: {exc}[/red]")
        raise typer.Exit(2) from None
    with api_client() as api:
        try:
            counts = import_config(
                api,
                data or {},
                prune=prune,
                dry_run=dry_run,
                say=out.print,
                update_secrets=update_secrets,
            )
        except ImportRefused as exc:
            for problem in exc.problems:
                err.print(problem, style="red", markup=False, highlight=False, soft_wrap=True)
            err.print(f"{file}: {len(exc.problems)} problem(s); nothing was changed")
            raise typer.Exit(1) from None
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to do"
    out.print(("dry run: " if dry_run else "") + summary)


def register(app: typer.Typer) -> None:
    app.add_typer(contacts, name="contacts")
    app.add_typer(media, name="media")
    app.add_typer(rules, name="rules")
    app.add_typer(checks, name="checks")
    app.add_typer(maintenance, name="maintenance")
    app.command("ack")(ack)
    app.command("deliveries")(deliveries)
    app.command("notifications")(notifications)
    app.command("export")(export)
    app.command("import")(import_)
