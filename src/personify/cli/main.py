"""The ``personify`` command: one sub-command or group per noun."""

from __future__ import annotations

import typer

from personify.cli import apply as apply_cli
from personify.cli import demo, importing, profiles, quarantine, segments, serve

app = typer.Typer(
    help="personify: collect events, unify profiles, personalize.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("apply")(apply_cli.apply)
app.add_typer(importing.app, name="import")
app.add_typer(profiles.app, name="profiles")
app.add_typer(quarantine.app, name="quarantine")
app.add_typer(segments.app, name="segments")


def run() -> None:
    app()
