"""The ``personify`` command: one sub-command or group per noun."""

from __future__ import annotations

import typer

from personify.cli import apply as apply_cli
from personify.cli import decide as decide_cli
from personify.cli import demo, importing, profiles, quarantine, segments, serve
from personify.cli import experiments as experiments_cli
from personify.cli import keys as keys_cli
from personify.cli import models as models_cli
from personify.cli import privacy as privacy_cli
from personify.cli import recs as recs_cli

app = typer.Typer(
    help="personify: collect events, unify profiles, personalize.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("apply")(apply_cli.apply)
app.add_typer(decide_cli.app, name="decide")
app.add_typer(importing.app, name="import")
app.add_typer(profiles.app, name="profiles")
app.add_typer(quarantine.app, name="quarantine")
app.add_typer(segments.app, name="segments")
app.add_typer(experiments_cli.app, name="experiments")
app.add_typer(models_cli.train_app, name="train")
app.add_typer(models_cli.app, name="models")
app.add_typer(recs_cli.app, name="recs")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(privacy_cli.app, name="privacy")


def run() -> None:
    app()
