"""``personify quarantine``: list and replay messages that failed validation."""

from __future__ import annotations

import orjson
import typer
from rich.table import Table

from personify.cli.common import console, friendly_errors
from personify.errors import InvalidInput

app = typer.Typer(help="Quarantined (dead-letter) messages.")


@app.command("list")
@friendly_errors
def list_items(
    status: str = typer.Option("quarantined", help="quarantined, replayed or all."),
    limit: int = typer.Option(50),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """List quarantined messages with the reason each was refused."""
    from personify.platform import build

    if status not in ("quarantined", "replayed", "all"):
        raise InvalidInput(f"unknown status {status!r}", hint="use quarantined, replayed or all")
    with build() as p:
        items = p.quarantined(None if status == "all" else status, limit)
        if as_json:
            for item in items:
                console.print_json(orjson.dumps(item).decode())
            return
        table = Table("id", "received", "source", "status", "reason", title="quarantine")
        for item in items:
            table.add_row(
                item["id"],
                item["received_at"],
                item["source"] or "",
                item["status"],
                item["reason"],
            )
        console.print(table)
        wanted = None if status == "all" else status
        console.print(f"{p.stores.quarantine.count(wanted)} {status} in all")


@app.command("replay")
@friendly_errors
def replay(
    ids: list[str] = typer.Argument(None, help="Quarantine ids to replay."),
    replay_all: bool = typer.Option(False, "--all", help="Replay every quarantined message."),
) -> None:
    """Validate quarantined messages again and accept those that now pass."""
    from personify.platform import build

    if not ids and not replay_all:
        raise InvalidInput("give quarantine ids or --all", hint="personify quarantine list")
    with build() as p:
        targets = [i["id"] for i in p.quarantined("quarantined", 100_000)] if replay_all else ids
        ok = 0
        for item_id in targets:
            result = p.replay(item_id)
            if result["status"] == "replayed":
                ok += 1
            else:
                console.print(f"[yellow]{item_id}[/] still invalid: {result['reason']}")
        p.drain()
        console.print(f"replayed {ok} of {len(targets)}")
