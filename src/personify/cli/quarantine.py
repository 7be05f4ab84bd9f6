"""``personify quarantine``: list and replay messages that failed validation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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
    limit: int = typer.Option(50, min=1, max=1000, help="How many to list."),
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
    payload: str | None = typer.Option(
        None,
        "--payload",
        metavar="FILE|-",
        help="A JSON file (or - for stdin) holding the corrected message; one id only.",
    ),
) -> None:
    """Validate quarantined messages again and accept those that now pass.

    A message that is still invalid stays quarantined exactly as it was.

    Exits with status 2 when none of the messages could be replayed.
    """
    from personify.platform import build

    if not ids and not replay_all:
        raise InvalidInput("give quarantine ids or --all", hint="personify quarantine list")
    if payload is not None and (replay_all or len(ids) != 1):
        raise InvalidInput(
            "--payload corrects one message: give exactly one quarantine id, without --all",
            hint="personify quarantine replay ID --payload fixed.json",
        )
    corrected = _read_payload(payload) if payload is not None else None
    with build() as p:
        targets = [i["id"] for i in p.quarantined("quarantined", 100_000)] if replay_all else ids
        ok = 0
        for item_id in targets:
            result = p.replay(item_id, corrected)
            if result["status"] == "replayed":
                ok += 1
                continue
            console.print(f"[yellow]{item_id}[/] still invalid: {result['reason']}")
            if result.get("needs_payload"):
                console.print(
                    f"  give the corrected message as JSON: personify quarantine replay {item_id}"
                    " --payload FILE (or - to read it from stdin)"
                )
        p.drain()
        console.print(f"replayed {ok} of {len(targets)}")
    if targets and not ok:
        raise InvalidInput(
            f"none of the {len(targets)} message(s) could be replayed; they stay quarantined",
            hint="see why with `personify quarantine list`, then correct one with "
            "`personify quarantine replay ID --payload FILE`",
        )


def _read_payload(source: str) -> dict[str, Any]:
    """The corrected message from a JSON file, or from stdin for ``-``."""
    where = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            f"cannot read --payload {source}: {exc.strerror}", hint="check the path"
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput(f"--payload {where} is not UTF-8 text") from None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"--payload {where} is not valid JSON: {exc}",
            hint='give one Segment message as a JSON object, e.g. {"type": "track", ...}',
        ) from None
    if not isinstance(value, dict):
        raise InvalidInput(
            f"--payload {where} must hold one JSON object (a Segment message), "
            f"got {type(value).__name__}",
            hint='e.g. {"type": "track", "userId": "u1", "event": "Signed Up"}',
        )
    return value
