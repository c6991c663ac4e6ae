"""``tocsin dead list|show|requeue|purge``: inspect and replay the dead-letter queue.

How letters are read, named and replayed is ``shared.deadletters`` (the
dashboard's dead-letter page uses it too).  Bodies are shown with
secret-looking fields (webhook secrets, routing keys, passwords, tokens)
masked, and a medium's address shown without its secret part (a PagerDuty
routing key, the path and query of a Slack or webhook URL), because gateway
dead letters carry the medium (``shared.masking.mask_document``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.cli.dead_view import age, pick, short_reason
from shared.config import Settings
from shared.errors import ConfigError
from shared.masking import mask_document as redact

# shared.deadletters (and with it pika) loads in the commands, not when `tocsin` starts.
if TYPE_CHECKING:
    from shared.deadletters import DeadLetter

out = Console()
err = Console(stderr=True)


def render_body(body: bytes, limit: int = 4000) -> str:
    """The body for a terminal: pretty, masked JSON when it parses, else escaped text."""
    try:
        return json.dumps(redact(json.loads(body)), indent=2, ensure_ascii=False)[:limit]
    except ValueError:
        return repr(body[:limit])


def select(
    letters: Sequence[DeadLetter], ids: Sequence[str], stage: str | None
) -> list[DeadLetter]:
    """Letters chosen by id (or a unique prefix), optionally only of one stage.

    An id that names no letter, or several, ends the command with the reason:
    acting on a guess would replay the wrong message.
    """
    wanted, problems = pick(ids, [d.id for d in letters])
    if problems:
        for problem in problems:
            err.print(problem, style="red", markup=False, highlight=False)
        raise typer.Exit(1)
    chosen = [d for d in letters if not ids or d.id in wanted]
    return [d for d in chosen if stage is None or d.stage == stage]


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


dead_app = typer.Typer(
    help="Inspect, replay and purge dead letters (the queue <namespace>.dead).",
    no_args_is_help=True,
)
LimitOpt = Annotated[int, typer.Option(help="Look at most at this many dead letters.")]
StageOpt = Annotated[str | None, typer.Option(help="Only letters of this stage (or 'broker').")]


@dead_app.command("list")
def list_cmd(
    limit: LimitOpt = 100,
    stage: StageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List dead letters, oldest first: id, check, age, stage, origin queue and reason."""
    from shared.deadletters import check_of, dead_channel, fetch

    with dead_channel(_settings()) as (channel, queue):
        letters = select(fetch(channel, queue, limit), [], stage)
    if as_json:
        rows = [
            {
                "id": d.id,
                "position": d.position,
                "message_id": d.message_id,
                "check": check_of(d.body),
                "stage": d.stage,
                "queue": d.queue,
                "routing_key": d.routing_key,
                "reason": d.reason,
                "time": d.time,
                "bytes": len(d.body),
            }
            for d in letters
        ]
        out.print_json(json.dumps(rows))
        return
    now = time.time()
    table = Table("id", "check", "age", "stage", "from queue", "reason")
    table.columns[0].no_wrap = True
    table.columns[5].min_width = 30
    for d in letters:
        table.add_row(
            d.id,
            check_of(d.body),
            age(now - d.time if d.time else None),
            d.stage,
            d.queue or "?",
            short_reason(d.reason),
        )
    out.print(table)
    out.print(f"{len(letters)} dead letter(s) shown")


@dead_app.command("show")
def show_cmd(
    ids: Annotated[list[str], typer.Argument(help="Ids from `list` (or unique prefixes).")],
    limit: LimitOpt = 1000,
) -> None:
    """Show dead letters in full: headers, reason and body (secrets masked)."""
    from shared.deadletters import check_of, dead_channel, fetch, header_text

    with dead_channel(_settings()) as (channel, queue):
        letters = select(fetch(channel, queue, limit), ids, None)
    if not letters:
        err.print("no such dead letter")
        raise typer.Exit(1)
    for d in letters:
        out.print(f"[bold]{d.id}[/bold] check={check_of(d.body)} stage={d.stage}")
        out.print(f"from queue: {d.queue or '?'} (routing key {d.routing_key!r})")
        out.print(f"reason: {d.reason}")
        headers = {k: header_text(v) for k, v in redact(d.headers).items() if k != "x-death"}
        out.print(f"headers: {json.dumps(headers, default=str)}")
        out.print(render_body(d.body), markup=False, highlight=False)


@dead_app.command("requeue")
def requeue_cmd(
    ids: Annotated[list[str] | None, typer.Argument(help="Ids from `list` (or prefixes).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Requeue every (selected) letter.")] = False,
    stage: StageOpt = None,
    limit: LimitOpt = 10_000,
) -> None:
    """Send dead letters back to the queue they came from, as new messages."""
    from shared.deadletters import RequeueRefused, dead_channel, fetch, requeue

    if not ids and not all_:
        err.print("name dead letters to requeue by id (from `tocsin dead list`), or pass --all")
        raise typer.Exit(2)
    with dead_channel(_settings()) as (channel, queue):
        chosen = select(fetch(channel, queue, limit), ids or [], stage)
        try:
            done, skipped = requeue(channel, chosen)
        except RequeueRefused as exc:
            err.print(str(exc))
            raise typer.Exit(1) from exc
    for line in skipped:
        err.print(f"[yellow]skipped[/yellow] {line}")
    out.print(f"requeued {done} dead letter(s)")


@dead_app.command("purge")
def purge_cmd(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every dead letter (asks first)."""
    from shared.deadletters import dead_channel, purge

    with dead_channel(_settings()) as (channel, queue):
        count = channel.queue_declare(queue, passive=True).method.message_count
        if count and not yes:
            typer.confirm(f"delete {count} dead letter(s) from {queue}?", abort=True)
        purged = purge(channel, queue)
    out.print(f"purged {purged} dead letter(s)")


def register(app: typer.Typer) -> None:
    """Add ``tocsin dead …`` to the main CLI."""
    app.add_typer(dead_app, name="dead")
