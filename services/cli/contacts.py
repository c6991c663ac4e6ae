"""CLI commands for contacts and their media (create, list, test a medium)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from services.cli.client import ApiClient
from services.cli.ids import CONTACT_HELP, ContactArg, MediumArg, resolve
from services.cli.logs import DELIVERY_COLS
from services.cli.output import JsonOpt, api_client, err, fail, out, show, with_names
from services.cli.parsing import (
    pairs,
    parse_duration,
)
from services.cli.rules import RULE_COLS

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
