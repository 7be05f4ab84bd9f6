"""``python -m personify.cli`` runs the command line."""

from personify.cli.main import run

run()
