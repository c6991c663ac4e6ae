"""``tocsin queues migrate``: make the queues an older Tocsin declared as classic quorum queues.

The work is ``shared.queue_migration``; this module asks it, refuses while
old workers still consume, and reports.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from services.cli.environment import settings_or_exit
from services.cli.output import fail, out

queues = typer.Typer(help="RabbitMQ queues of the namespace.", no_args_is_help=True)


@queues.command("migrate")
def migrate_command(
    force: Annotated[
        bool, typer.Option("--force", help="Migrate even while queues have consumers.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Turn NS.dead and the gateway delay queues into quorum queues, keeping their messages.

    Needed once when upgrading from a version that declared them as classic
    queues (workers then log "run `tocsin queues migrate`").  Stop the old
    workers first; new ones may run and resume when it is done.
    """
    # pika and the broker helpers load here, not when `tocsin` starts (every command pays that).
    from shared.amqp import Names, connect
    from shared.consumer import AMQP_ERRORS
    from shared.queue_migration import busy_queues, formerly_classic, migrate

    settings = settings_or_exit()
    names = Names(settings.namespace)
    try:
        conn = connect(settings.amqp_url, name="tocsin-queues-migrate")
    except AMQP_ERRORS as exc:
        fail(f"cannot reach RabbitMQ: {exc!r}")
        raise typer.Exit(1) from None
    try:
        specs = formerly_classic(names)
        if not force:
            watched = names.all_queues(settings.partitions) + [s.name for s in specs]
            busy = busy_queues(conn, watched)
            if busy:
                listed = ", ".join(f"{q} ({n})" for q, n in sorted(busy.items()))
                fail(
                    f"queues still have consumers: {listed}; stop every worker of the old "
                    "version first (or --force if they are all of this version)"
                )
                raise typer.Exit(1)
        done = migrate(conn, specs)
    finally:
        if conn.is_open:
            conn.close()
    if as_json:
        out.print_json(
            json.dumps({"migrated": [{"queue": m.queue, "messages": m.messages} for m in done]})
        )
        return
    if not done:
        out.print("nothing to migrate: every queue is a quorum queue")
    for m in done:
        out.print(f"{m.queue}: now a quorum queue ({m.messages} messages moved)")


def register(app: typer.Typer) -> None:
    app.add_typer(queues, name="queues")
