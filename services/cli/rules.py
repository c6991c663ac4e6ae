"""CLI commands for notification rules: which checks, when, on which media."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from services.cli.ids import CONTACT_HELP, RuleArg, resolve
from services.cli.output import JsonOpt, api_client, out, show, with_names
from services.cli.parsing import (
    describe_recurrence,
    parse_recurrence,
)

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
