"""``personify apply``: validate a workspace (YAML) and write its changes as new versions."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from rich.table import Table

from personify.cli.common import console, friendly_errors


@friendly_errors
def apply(
    path: Path = typer.Argument(..., help="A workspace YAML file or a folder of them."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate and show what would change; write nothing."
    ),
    actor: str = typer.Option("cli", help="Who is making the change (kept in the history)."),
    show_diff: bool = typer.Option(False, "--diff", help="Show each change line by line."),
    as_json: bool = typer.Option(False, "--json", help="Print the changes as JSON."),
) -> None:
    """Apply workspace-as-code: everything is validated first, nothing is written if any of it
    is invalid, and each changed definition becomes a new version (see its history)."""
    from personify.config import Settings
    from personify.definitions import open_store
    from personify.workspace import apply as apply_workspace

    store = open_store(Settings())
    try:
        changes = apply_workspace(path, store, actor, dry_run=dry_run)
    finally:
        store.close()
    if as_json:
        console.print_json(orjson.dumps([c.as_dict() for c in changes]).decode())
        return
    verb = "would apply" if dry_run else "applied"
    table = Table("section", "key", "action", "version", title=f"{verb} {path}")
    for change in changes:
        version = "" if change.version is None else str(change.version)
        table.add_row(change.section, change.key, change.action, version)
    console.print(table)
    if show_diff:
        for change in changes:
            if change.diff:
                console.print(f"[bold]{change.section}.{change.key}[/]")
                for line in change.diff:
                    console.print(f"  {line}", markup=False, highlight=False)
    changed = sum(c.action != "unchanged" for c in changes)
    console.print(
        f"{changed} changed, {len(changes) - changed} unchanged" + (" (dry run)" if dry_run else "")
    )
