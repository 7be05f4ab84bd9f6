"""``personify keys`` and ``personify privacy`` on a data directory."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from personify.cli.main import app
from personify.config import Settings
from personify.platform import build

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERSONIFY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PERSONIFY_WRITE_KEYS", "wk")
    return tmp_path / "data"


def test_keys_create_list_revoke(data: Path) -> None:
    made = runner.invoke(app, ["keys", "create", "--role", "decide", "--name", "site", "--json"])
    assert made.exit_code == 0, made.output
    key = orjson.loads(made.output)
    assert key["token"].startswith("pk_")
    listed = runner.invoke(app, ["keys", "list", "--json"])
    assert key["key_id"] in listed.output and key["token"] not in listed.output
    assert runner.invoke(app, ["keys", "revoke", key["key_id"]]).exit_code == 0
    assert runner.invoke(app, ["keys", "list", "--json"]).output.strip() == ""
    bad = runner.invoke(app, ["keys", "create", "--role", "root", "--name", "x"])
    assert bad.exit_code == 2 and "must be one of" in bad.output
    assert runner.invoke(app, ["keys", "revoke", "nope"]).exit_code == 2


def test_consent_export_erase_and_audit(data: Path, tmp_path: Path) -> None:
    with build(Settings()) as p:
        p.identify(user_id="u1", traits={"email": "ann@example.com", "country": "US"})
        p.drain()
    shown = runner.invoke(
        app, ["privacy", "consent", "--email", "ann@example.com", "--refuse", "profiling"]
    )
    assert shown.exit_code == 0, shown.output
    assert "refused via cli" in shown.output
    bad = runner.invoke(app, ["privacy", "consent", "--user-id", "u1", "--grant", "telepathy"])
    assert bad.exit_code == 2 and "unknown purpose" in bad.output
    out = tmp_path / "ann.json"
    assert (
        runner.invoke(app, ["privacy", "export", "--user-id", "u1", "--out", str(out)]).exit_code
        == 0
    )
    exported = orjson.loads(out.read_bytes())
    assert exported["consent_history"][0]["purpose"] == "profiling"
    assert runner.invoke(app, ["privacy", "erase", "--user-id", "u1"]).exit_code == 2  # no --yes
    erased = runner.invoke(app, ["privacy", "erase", "--user-id", "u1", "--yes"])
    assert erased.exit_code == 0 and "completed" in erased.output
    two = runner.invoke(app, ["privacy", "erase", "--user-id", "u1", "--email", "a@b.co", "--yes"])
    assert two.exit_code == 2
    audit = runner.invoke(app, ["privacy", "audit", "--action", "privacy.*", "--json"])
    actions = [orjson.loads(line)["action"] for line in audit.output.splitlines() if line]
    assert actions == ["privacy.export", "privacy.erase"]


def test_rotate_key_needs_encryption_and_then_reseals(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = runner.invoke(app, ["privacy", "rotate-key"])
    assert refused.exit_code == 2 and "ENCRYPT_PII" in refused.output
    monkeypatch.setenv("PERSONIFY_PRIVACY__ENCRYPT_PII", "true")
    with build(Settings()) as p:
        p.identify(user_id="u1", traits={"email": "ann@example.com"})
        p.drain()
    before = orjson.loads((data / "pii.keys").read_bytes())["current"]
    done = runner.invoke(app, ["privacy", "rotate-key"])
    assert done.exit_code == 0, done.output
    assert "re-encrypted 1 profiles" in done.output
    ring = orjson.loads((data / "pii.keys").read_bytes())
    assert ring["current"] != before and set(ring["keys"]) == {before, ring["current"]}
    assert "log: looked at 1, re-encrypted 1" in done.output  # progress, store by store
    raw = b"".join(f.read_bytes() for f in data.iterdir() if f.is_file())
    assert f"enc:1:{before}:".encode() not in raw  # the log and events were re-sealed too
    with build(Settings()) as p:
        assert p.timeline(p.lookup("user_id", "u1"))[0]["traits"]["email"] == "ann@example.com"
    retired = runner.invoke(app, ["privacy", "rotate-key", "--retire"])
    assert retired.exit_code == 0, retired.output
    ring = orjson.loads((data / "pii.keys").read_bytes())
    assert list(ring["keys"]) == [ring["current"]]
    with build(Settings()) as p:
        assert p.profile_by("email", "ann@example.com")["traits"]["email"]["value"]
