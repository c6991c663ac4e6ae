"""CLI commands `tocsin export` and `tocsin import`: the whole configuration as one file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from services.cli.output import api_client, err, out


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
    import yaml

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
