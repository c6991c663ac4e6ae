"""Registers the CLI's command groups over the management API.

Each group lives in its own module: contacts and media (contacts.py), rules
(rules.py), checks, acks and maintenance (checks.py), the logs (logs.py), export
and import (config_commands.py). Every listing prints a table, or the API's JSON with
``--json`` (output.py).
"""

from __future__ import annotations

import typer

from services.cli.checks import ack, checks, maintenance
from services.cli.config_commands import export, import_
from services.cli.contacts import contacts, media
from services.cli.logs import deliveries, notifications
from services.cli.rules import rules


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
