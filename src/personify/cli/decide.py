"""``personify decide``: what a person would see in a placement, and why; and the report."""

from __future__ import annotations

from typing import Any

import orjson
import typer
from rich.table import Table

from personify.cli.common import console, friendly_errors
from personify.errors import InvalidInput, Problem

app = typer.Typer(
    help="Decide what a person sees (personify decide --user U --placement P), or report.",
    invoke_without_command=True,
)


def _context(text: str | None, channel: str | None, page: str | None) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if text:
        try:
            context = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(
                "--context is not valid JSON",
                hint='e.g. --context \'{"page": "/", "cart_value": 42.5}\'',
                problems=[Problem("context", str(exc))],
            ) from None
        if not isinstance(context, dict):
            raise InvalidInput("--context must be a JSON object", hint='e.g. {"page": "/"}')
    if channel:
        context["channel"] = channel
    if page:
        context["page"] = page
    return context


@app.callback()
@friendly_errors
def decide(
    ctx: typer.Context,
    user: str | None = typer.Option(None, "--user", help="The person's userId."),
    anonymous_id: str | None = typer.Option(None, "--anonymous-id", help="Or their anonymousId."),
    placement: list[str] = typer.Option(None, "--placement", "-p", help="Placement (repeatable)."),
    context: str | None = typer.Option(None, help="Request context as a JSON object."),
    channel: str | None = typer.Option(None, help="Shortcut for context.channel."),
    page: str | None = typer.Option(None, help="Shortcut for context.page."),
    log: bool = typer.Option(
        True, "--log/--no-log", help="Record the decision (it then counts towards caps)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the decisions as JSON."),
) -> None:
    """Print the decision for each placement with the reasons it was made."""
    if ctx.invoked_subcommand is not None:
        return
    if not placement:
        raise InvalidInput(
            "give at least one --placement",
            hint="personify decide --user user_0000005 --placement home_hero",
        )
    from personify.config import Settings
    from personify.decide.log import DecisionLog
    from personify.decide.service import Decider
    from personify.experiments.serving import attach
    from personify.platform import build

    # Deciding never reads the event store, and a running server holds events.duckdb.
    with build(Settings(event_store_backend="memory")) as p:
        decider = Decider(p, log=None if log else DecisionLog(None))
        attach(decider, background_sync=False)  # experiments and bandits decide too
        try:
            decisions = decider.decide(
                placements=placement,
                user_id=user,
                anonymous_id=anonymous_id,
                context=_context(context, channel, page),
            )
        finally:
            decider.close()
    if as_json:
        console.print_json(orjson.dumps([d.as_dict() for d in decisions]).decode())
        return
    for d in decisions:
        table = Table.grid(padding=(0, 2))
        table.add_row("[bold]placement[/]", d.placement)
        table.add_row("[bold]content[/]", d.content or "(nothing)")
        table.add_row("[bold]variant[/]", d.variant or "")
        table.add_row("[bold]policy[/]", f"{d.policy} (propensity {d.propensity:g})")
        table.add_row("[bold]decision_id[/]", d.decision_id)
        for name, value in (d.rendered or {}).items():
            table.add_row(f"  {name}", str(value))
        console.print(table)
        for reason in d.reasons:
            console.print(f"  • [{reason.type}] {reason.message}", markup=False, highlight=False)
        console.print()


@app.command("report")
@friendly_errors
def report(
    placement: str | None = typer.Option(None, help="Only this placement."),
    since: str | None = typer.Option(None, help="Only decisions at or after (ISO timestamp)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Per content: impressions, views, clicks, conversions and revenue."""
    from personify.config import Settings
    from personify.decide.service import open_decision_log
    from personify.profiles.records import instant

    start = None if since is None else instant("since", since)  # checked before any file is opened
    log = open_decision_log(Settings())
    try:
        rows = log.report(placement, start)
    finally:
        log.close()
    if as_json:
        console.print_json(orjson.dumps(rows).decode())
        return
    table = Table(
        "placement",
        "content",
        "impressions",
        "views",
        "clicks",
        "conversions",
        "revenue",
        "ctr",
        title="decisions by content",
    )
    for row in rows:
        table.add_row(
            row["placement"],
            row["content"],
            str(row["impressions"]),
            str(row["views"]),
            str(row["clicks"]),
            str(row["conversions"]),
            f"{row['revenue']:.2f}",
            f"{row['ctr']:.2%}",
        )
    console.print(table)
