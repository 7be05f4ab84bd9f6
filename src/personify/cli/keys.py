"""``personify keys``: API keys with roles (create, list, revoke).

Works on ``<data_dir>/keys.sqlite`` directly, so it also works while the server runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from personify.cli.common import console, friendly_errors
from personify.errors import InvalidInput
from personify.privacy.audit import AuditLog
from personify.privacy.keys import ApiKeyStore

app = typer.Typer(help="API keys with roles: admin, marketer, analyst, decide.")


@contextmanager
def _stores() -> Iterator[tuple[ApiKeyStore, AuditLog]]:
    from personify.config import Settings

    settings = Settings()
    if settings.state_backend != "sqlite":
        raise InvalidInput(
            "keys are only kept with the sqlite state backend",
            hint="unset PERSONIFY_STATE_BACKEND (memory keys vanish with the process)",
        )
    keys = ApiKeyStore(settings.data_dir / "keys.sqlite")
    audit = AuditLog(settings.data_dir / "audit.sqlite")
    try:
        yield keys, audit
    finally:
        keys.close()
        audit.close()


def _safe(name: str) -> str:
    """A stored name for the terminal: Rich markup escaped and control characters shown as
    escapes (names from before control characters were refused may still hold them)."""
    if not name.isprintable():
        name = "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)
    return escape(name)


@app.command("create")
@friendly_errors
def create(
    role: str = typer.Option(..., help="admin, marketer, analyst or decide."),
    name: str = typer.Option(..., help="Who or what uses the key."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a key; its token is printed once and only a hash of it is stored."""
    with _stores() as (keys, audit):
        created = keys.create(role, name)
        audit.record("cli", "keys.create", created.key.key_id, {"role": role})
    if as_json:
        console.print_json(orjson.dumps({**created.key.as_dict(), "token": created.token}).decode())
        return
    console.print(f"created key [bold]{created.key.key_id}[/] with role {role}")
    console.print(f"token (shown once): [bold green]{created.token}[/]")
    console.print("send it as 'Authorization: Bearer <token>'")


@app.command("list")
@friendly_errors
def list_keys(
    include_revoked: bool = typer.Option(False, "--all", help="Include revoked keys."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """List keys (never their secrets)."""
    with _stores() as (keys, _):
        found = keys.list(include_revoked)
    if as_json:
        for key in found:
            typer.echo(orjson.dumps(key.as_dict()).decode())
        return
    table = Table("key id", "role", "name", "created", "revoked", title="API keys")
    for key in found:
        table.add_row(key.key_id, key.role, _safe(key.name), key.created_at, key.revoked_at or "")
    console.print(table)


@app.command("revoke")
@friendly_errors
def revoke(
    key_id: str = typer.Argument(..., help="The key id (from `personify keys list`)."),
) -> None:
    """Revoke a key: it stops working at once."""
    with _stores() as (keys, audit):
        key = keys.revoke(key_id)
        audit.record("cli", "keys.revoke", key_id, {"role": key.role})
    console.print(f"revoked {key.key_id} ({key.role}, {_safe(key.name)})")
