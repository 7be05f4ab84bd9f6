"""``personify quarantine replay``: corrected payloads, raw import lines and exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result
from typer.testing import CliRunner

from personify.cli.main import app
from personify.platform import build

runner = CliRunner()
NO_EVENT = {"type": "track", "userId": "u1", "messageId": "m2"}


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERSONIFY_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def import_lines(tmp_path: Path, *lines: str) -> list[dict[str, Any]]:
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n")
    assert runner.invoke(app, ["import", "ndjson", str(path)]).exit_code == 0
    with build() as p:
        return p.quarantined("quarantined", 100)


def said(result: Result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def stored(item_id: str) -> dict[str, Any]:
    with build() as p:
        item = p.stores.quarantine.get(item_id)
    assert item is not None
    return item


def test_a_raw_import_line_says_it_needs_a_corrected_payload(tmp_path: Path) -> None:
    [item] = import_lines(tmp_path, "{not json")
    result = runner.invoke(app, ["quarantine", "replay", item["id"]])
    assert "raw import line" in said(result) and "line 1" in said(result)
    assert "--payload" in said(result)
    assert "must be one of" not in said(result)
    assert stored(item["id"]) == item


def test_a_corrected_payload_from_a_file_replays_the_message(tmp_path: Path) -> None:
    [item] = import_lines(tmp_path, "{not json")
    fixed = tmp_path / "fixed.json"
    fixed.write_bytes(orjson.dumps({"type": "track", "userId": "u1", "event": "Fixed"}))
    result = runner.invoke(app, ["quarantine", "replay", item["id"], "--payload", str(fixed)])
    assert result.exit_code == 0, result.output
    assert "replayed 1 of 1" in said(result)
    assert stored(item["id"])["status"] == "replayed"


def test_a_corrected_payload_may_come_from_stdin(tmp_path: Path) -> None:
    [item] = import_lines(tmp_path, orjson.dumps(NO_EVENT).decode())
    fixed = orjson.dumps({**NO_EVENT, "event": "Fixed"}).decode()
    result = runner.invoke(app, ["quarantine", "replay", item["id"], "--payload", "-"], input=fixed)
    assert result.exit_code == 0, result.output
    assert stored(item["id"])["payload"] == {**NO_EVENT, "event": "Fixed"}


@pytest.mark.parametrize(
    ("text", "expected"), [("{oops", "not valid JSON"), ("[1, 2]", "one JSON object")]
)
def test_a_payload_that_is_not_a_json_object_is_refused_clearly(
    tmp_path: Path, text: str, expected: str
) -> None:
    [item] = import_lines(tmp_path, orjson.dumps(NO_EVENT).decode())
    result = runner.invoke(app, ["quarantine", "replay", item["id"], "--payload", "-"], input=text)
    assert result.exit_code == 2
    assert expected in said(result) and "Traceback" not in said(result)
    assert stored(item["id"]) == item


def test_a_payload_needs_exactly_one_id(tmp_path: Path) -> None:
    result = runner.invoke(app, ["quarantine", "replay", "--all", "--payload", "-"], input="{}")
    assert result.exit_code == 2 and "exactly one quarantine id" in said(result)


def test_a_still_invalid_payload_leaves_the_item_as_it_was(tmp_path: Path) -> None:
    [item] = import_lines(tmp_path, orjson.dumps(NO_EVENT).decode())
    bad = orjson.dumps({"type": "track", "userId": "u1"}).decode()
    result = runner.invoke(app, ["quarantine", "replay", item["id"], "--payload", "-"], input=bad)
    assert result.exit_code == 2
    assert "still invalid" in said(result)
    assert stored(item["id"]) == item


def test_replay_all_that_replays_none_fails_and_points_to_the_list(tmp_path: Path) -> None:
    items = import_lines(tmp_path, "{not json", orjson.dumps(NO_EVENT).decode())
    result = runner.invoke(app, ["quarantine", "replay", "--all"])
    assert result.exit_code == 2
    assert "replayed 0 of 2" in said(result)
    assert "personify quarantine list" in said(result)
    assert [stored(i["id"]) for i in items] == items  # reasons and payloads unchanged


def test_replay_all_with_nothing_quarantined_succeeds() -> None:
    result = runner.invoke(app, ["quarantine", "replay", "--all"])
    assert result.exit_code == 0, result.output
    assert "replayed 0 of 0" in said(result)
