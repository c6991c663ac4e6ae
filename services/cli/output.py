"""How the CLI talks to people: tables or the API's JSON, error lines, and the API
session whose errors end a command with a readable message."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from services.cli.client import ApiCallFailed, ApiClient
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


def call_and_show(method: str, path: str, columns: Columns, as_json: bool, **kw: Any) -> None:
    """One API call, its answer shown as a table or JSON: what most list, show and create
    commands do (``kw`` goes to the request: ``json=``, ``params=``)."""
    with api_client() as api:
        show(api.call(method, path, **kw), columns, as_json)


def delete(path: str, what: str) -> None:
    """``DELETE path``, then ``deleted <what>`` (``deleted user u1``)."""
    with api_client() as api:
        api.call("DELETE", path)
    out.print(f"deleted {what}")
