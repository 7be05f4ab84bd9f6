"""Bad input to ``personify keys`` and ``personify privacy`` is refused cleanly, and error
text and stored names are printed literally (never as Rich markup or raw escapes)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from personify.cli.common import friendly_errors
from personify.cli.main import app
from personify.config import Settings
from personify.errors import InvalidInput, Problem
from personify.platform import build
from personify.privacy.keys import ApiKeyStore

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERSONIFY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PERSONIFY_WRITE_KEYS", "wk")
    return tmp_path / "data"


@pytest.fixture
def person(data: Path) -> Path:
    with build(Settings()) as p:
        p.identify(user_id="u1", traits={"email": "ann@example.com", "country": "US"})
        p.drain()
    return data


def _audit_actions(data: Path) -> list[str]:
    listed = runner.invoke(app, ["privacy", "audit", "--json"])
    assert listed.exit_code == 0, listed.output
    return [orjson.loads(line)["action"] for line in listed.output.splitlines() if line]


def test_error_text_is_printed_literally_not_as_markup() -> None:
    cli = typer.Typer()

    @cli.command()
    @friendly_errors
    def fail() -> None:
        raise InvalidInput(
            "invalid model name 'Bad[/oops]'",
            hint="see [bold]the docs[/]",
            problems=[Problem("name[0]", "must match ^[a-z][a-z0-9_-]{0,63}$")],
        )

    res = CliRunner().invoke(cli, [])
    assert res.exit_code == 2, res.output
    assert "^[a-z][a-z0-9_-]{0,63}$" in res.output
    assert "'Bad[/oops]'" in res.output
    assert "[bold]the docs[/]" in res.output
    assert "name[0]" in res.output


def test_keys_list_prints_names_literally(data: Path) -> None:
    made = runner.invoke(app, ["keys", "create", "--role", "decide", "--name", "[/oops]"])
    assert made.exit_code == 0, made.output
    made = runner.invoke(app, ["keys", "create", "--role", "decide", "--name", "[bold]x[/bold]"])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    assert "[/oops]" in listed.output and "[bold]x[/bold]" in listed.output


def test_keys_list_never_writes_stored_control_characters(data: Path) -> None:
    # a name stored before control characters were refused
    data.mkdir(parents=True, exist_ok=True)
    store = ApiKeyStore(data / "keys.sqlite")
    created = store.create("decide", "placeholder")
    with store._db.tx() as con:
        con.execute("UPDATE api_keys SET name = ?", ("a\x00\x1b[31mred",))
    store.close()
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.output and "\x00" not in listed.output
    assert created.key.key_id in listed.output
    revoked = runner.invoke(app, ["keys", "revoke", created.key.key_id])
    assert revoked.exit_code == 0 and "\x1b" not in revoked.output


def test_keys_create_refuses_control_characters(data: Path) -> None:
    bad = runner.invoke(app, ["keys", "create", "--role", "decide", "--name", "a\x1b[31mred"])
    assert bad.exit_code == 2, bad.output
    assert runner.invoke(app, ["keys", "list", "--json"]).output.strip() == ""


def test_consent_refuses_a_purpose_both_granted_and_refused(person: Path) -> None:
    res = runner.invoke(
        app,
        [
            "privacy",
            "consent",
            "--email",
            "ann@example.com",
            "--grant",
            "marketing_push",
            "--refuse",
            "marketing_push",
        ],
    )
    assert res.exit_code == 2, res.output
    assert "marketing_push" in res.output
    assert "consent.set" not in _audit_actions(person)


def test_consent_refuses_a_version_without_changes(person: Path) -> None:
    res = runner.invoke(app, ["privacy", "consent", "--user-id", "u1", "--version", "v5"])
    assert res.exit_code == 2, res.output
    assert "--version" in res.output
    long = runner.invoke(
        app,
        ["privacy", "consent", "--user-id", "u1", "--grant", "profiling", "--version", "v" * 201],
    )
    assert long.exit_code == 2, long.output
    assert "consent.set" not in _audit_actions(person)


@pytest.mark.parametrize("after", ["99999999999999999999", "-1"])
def test_audit_after_is_bounded(data: Path, after: str) -> None:
    res = runner.invoke(app, ["privacy", "audit", "--after", after])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_export_checks_the_output_path_before_running(person: Path, tmp_path: Path) -> None:
    out = tmp_path / "nonexistent_dir" / "x.json"
    res = runner.invoke(app, ["privacy", "export", "--user-id", "u1", "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit)
    assert not out.exists()
    res = runner.invoke(app, ["privacy", "export", "--user-id", "u1", "--out", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert "privacy.export" not in _audit_actions(person)


def test_the_audit_table_prints_actors_and_targets_literally(data: Path) -> None:
    from personify.privacy.audit import AuditLog

    data.mkdir(parents=True, exist_ok=True)
    log = AuditLog(data / "audit.sqlite")
    log.record("key:[/oops]", "profiles.read", target="[bold]p_1[/bold]")
    log.close()
    listed = runner.invoke(app, ["privacy", "audit"])
    assert listed.exit_code == 0, listed.output
    assert "key:[/oops]" in listed.output and "[bold]p_1[/bold]" in listed.output
