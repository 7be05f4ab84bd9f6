"""``personify profiles``: look at unified profiles."""

from __future__ import annotations

import typer
from rich.panel import Panel
from rich.table import Table

from personify.cli.common import console, friendly_errors
from personify.errors import InvalidInput

app = typer.Typer(help="Unified customer profiles.")


@app.command("show")
@friendly_errors
def show(
    profile_id: str | None = typer.Argument(None, help="A profile id (or give an identity)."),
    user_id: str | None = typer.Option(None, "--user-id"),
    anonymous_id: str | None = typer.Option(None, "--anonymous-id"),
    email: str | None = typer.Option(None, "--email"),
    phone: str | None = typer.Option(None, "--phone"),
    events: int = typer.Option(
        10, min=0, max=1000, help="How many recent events to list (0: none)."
    ),
) -> None:
    """Show one profile: identities, traits with provenance, computed traits, recent events."""
    from personify.platform import build

    given = {"user_id": user_id, "anonymous_id": anonymous_id, "email": email, "phone": phone}
    if profile_id is not None and any(given.values()):
        raise InvalidInput(
            "give a profile id or exactly one identity, not both",
            hint="personify profiles show --email ada@example.com",
        )
    with build() as p:
        pid = profile_id or p.lookup(
            *p.one_identity(given, "personify profiles show --email ada@example.com")
        )
        prof = p.profile(pid)
        ids = Table.grid(padding=(0, 2))
        for kind, values in prof["identities"].items():
            if values:
                ids.add_row(f"[bold]{kind}[/]", ", ".join(values))
        console.print(Panel(ids, title=f"profile {prof['profile_id']}"))
        traits = Table("trait", "value", "source", "at", title="traits")
        for name, t in sorted(prof["traits"].items()):
            traits.add_row(name, str(t["value"]), t["source"], t["at"])
        console.print(traits)
        comp = Table("computed trait", "value", title="computed")
        for name, value in prof["computed"].items():
            if name != "event_counts":
                comp.add_row(name, str(value))
        for name, n in sorted(prof["computed"]["event_counts"].items()):
            comp.add_row(f"events: {name}", str(n))
        console.print(comp)
        if prof["merged_from"]:
            console.print(f"merged from: {', '.join(prof['merged_from'])}")
        for conflict in prof["history"]["conflicts"]:
            console.print(f"[yellow]identity conflict:[/] {conflict['detail']}")
        if events:
            rows = p.timeline(pid, limit=events)
            tl = Table("timestamp", "type", "event", "device", "session", title="recent events")
            for e in rows:
                tl.add_row(
                    e["timestamp"],
                    e["type"],
                    e["event"] or "",
                    e["device_type"] or "",
                    e["session_id"] or "",
                )
            console.print(tl)
