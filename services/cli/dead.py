"""``tocsin dead list|show|requeue|purge``: inspect and replay the dead-letter queue.

Dead letters reach ``NS.dead`` two ways: a worker rejects a message with a
reason (headers ``x-tocsin-stage``, ``x-tocsin-error``, ``x-tocsin-queue``,
``x-tocsin-routing-key``), or the broker gives up on a message that crashed
its consumer ``x-delivery-limit`` times (headers ``x-death`` and
``x-first-death-queue``/``-reason``, reason ``delivery_limit``).  Either way
we know the queue it came from, so ``requeue`` publishes it straight back to
that queue (default exchange) with the dead-letter and retry headers removed,
as if it were new: a replayed delivery gets fresh attempts.

Reading is non-destructive: messages are fetched with ``basic.get`` without
ack and go back, in order, when the channel closes; only the selected ones are
acked, after their copy was committed (AMQP transaction).  Bodies are shown
with secret-looking fields (webhook secrets, routing keys, passwords, tokens)
masked, and a medium's address shown without its secret part (a PagerDuty
routing key, the path and query of a Slack or webhook URL), because gateway
dead letters carry the medium (``shared.masking.mask_document``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import pika
import typer
from pika.adapters.blocking_connection import BlockingChannel
from rich.console import Console
from rich.table import Table

from services.cli.dead_view import age, check_of, letter_id, pick, short_reason
from shared.amqp import Names, connect
from shared.config import Settings
from shared.errors import ConfigError
from shared.masking import mask_document as redact

out = Console()
err = Console(stderr=True)

# Headers that describe a past death or past delivery attempts; a replay starts clean.
DROP_PREFIXES = ("x-death", "x-first-death-", "x-last-death-", "x-tocsin-", "x-delivery-count")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of ``NS.dead`` as an operator sees it."""

    position: int
    delivery_tag: int
    message_id: str | None
    stage: str
    reason: str
    queue: str | None
    routing_key: str
    time: int | None
    body: bytes
    headers: dict[str, Any]

    @property
    def id(self) -> str:
        """Stable between listings (positions shift): see ``dead_view.letter_id``."""
        return letter_id(self.message_id, self.body, self.reason)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def origin(headers: Mapping[str, Any]) -> tuple[str | None, str, str, str]:
    """(queue, routing key, stage, reason) of a dead letter, from our headers or the broker's."""
    if "x-tocsin-queue" in headers:
        return (
            _text(headers["x-tocsin-queue"]),
            _text(headers.get("x-tocsin-routing-key", "")),
            _text(headers.get("x-tocsin-stage", "?")),
            _text(headers.get("x-tocsin-error", "")),
        )
    deaths = headers.get("x-death") or []
    first = deaths[-1] if deaths else {}  # the broker prepends; the oldest death is last
    queue = headers.get("x-first-death-queue") or first.get("queue")
    reason = headers.get("x-first-death-reason") or first.get("reason") or "unknown"
    keys = first.get("routing-keys") or [""]
    count = first.get("count")
    text = f"broker: {_text(reason)}" + (f" after {count} death(s)" if count else "")
    if _text(reason) == "delivery_limit":
        text += " (the message crashed or was rejected by its consumer too many times)"
    return (_text(queue) if queue else None, _text(keys[0]), "broker", text)


def replay_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Headers for a replayed copy: no death records, no retry progress; counts replays."""
    kept = {k: v for k, v in headers.items() if not k.startswith(DROP_PREFIXES)}
    kept["x-tocsin-requeued"] = int(headers.get("x-tocsin-requeued", 0) or 0) + 1
    return kept


def render_body(body: bytes, limit: int = 4000) -> str:
    """The body for a terminal: pretty, masked JSON when it parses, else escaped text."""
    try:
        return json.dumps(redact(json.loads(body)), indent=2, ensure_ascii=False)[:limit]
    except ValueError:
        return repr(body[:limit])


@contextmanager
def _dead_channel(settings: Settings) -> Iterator[tuple[BlockingChannel, str]]:
    conn = connect(settings.amqp_url, name="tocsin-dead")
    try:
        yield conn.channel(), Names(settings.namespace).dead
    finally:
        if conn.is_open:
            conn.close()  # unacked messages return to the queue in their order


def fetch(channel: BlockingChannel, queue: str, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` dead letters, unacked (they return when the channel closes)."""
    letters: list[DeadLetter] = []
    while len(letters) < limit:
        method, props, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            break
        headers = dict(props.headers or {})
        src_queue, rkey, stage, reason = origin(headers)
        stamp = headers.get("x-tocsin-time")
        letters.append(
            DeadLetter(
                position=len(letters) + 1,
                delivery_tag=method.delivery_tag,
                message_id=props.message_id,
                stage=stage,
                reason=reason,
                queue=src_queue,
                routing_key=rkey,
                time=int(stamp) if isinstance(stamp, int) else None,
                body=body,
                headers=headers,
            )
        )
    return letters


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


def requeue(channel: BlockingChannel, letters: Sequence[DeadLetter]) -> tuple[int, list[str]]:
    """Publish copies back to their queues (one transaction), then ack the originals."""
    skipped: list[str] = []
    todo = []
    for d in letters:
        if not d.queue:
            skipped.append(f"{d.id}: origin unknown")
        else:
            todo.append(d)
    if not todo:
        return 0, skipped
    channel.tx_select()
    for d in todo:
        assert d.queue is not None
        channel.basic_publish(
            "",
            d.queue,
            d.body,
            properties=pika.BasicProperties(
                delivery_mode=pika.DeliveryMode.Persistent,
                content_type="application/json",
                message_id=d.message_id,
                headers=replay_headers(d.headers),
            ),
        )
    channel.tx_commit()
    for d in todo:
        channel.basic_ack(d.delivery_tag)
    channel.tx_commit()  # acks are transactional on a tx channel too
    return len(todo), skipped


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
    with _dead_channel(_settings()) as (channel, queue):
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
    with _dead_channel(_settings()) as (channel, queue):
        letters = select(fetch(channel, queue, limit), ids, None)
    if not letters:
        err.print("no such dead letter")
        raise typer.Exit(1)
    for d in letters:
        out.print(f"[bold]{d.id}[/bold] check={check_of(d.body)} stage={d.stage}")
        out.print(f"from queue: {d.queue or '?'} (routing key {d.routing_key!r})")
        out.print(f"reason: {d.reason}")
        headers = {k: _text(v) for k, v in redact(d.headers).items() if k != "x-death"}
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
    if not ids and not all_:
        err.print("name dead letters to requeue by id (from `tocsin dead list`), or pass --all")
        raise typer.Exit(2)
    with _dead_channel(_settings()) as (channel, queue):
        chosen = select(fetch(channel, queue, limit), ids or [], stage)
        done, skipped = requeue(channel, chosen)
    for line in skipped:
        err.print(f"[yellow]skipped[/yellow] {line}")
    out.print(f"requeued {done} dead letter(s)")


@dead_app.command("purge")
def purge_cmd(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every dead letter (asks first)."""
    with _dead_channel(_settings()) as (channel, queue):
        count = channel.queue_declare(queue, passive=True).method.message_count
        if count and not yes:
            typer.confirm(f"delete {count} dead letter(s) from {queue}?", abort=True)
        purged = channel.queue_purge(queue).method.message_count
    out.print(f"purged {purged} dead letter(s)")


def register(app: typer.Typer) -> None:
    """Add ``tocsin dead …`` to the main CLI."""
    app.add_typer(dead_app, name="dead")
