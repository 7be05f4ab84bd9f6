"""The command line: import, profiles show, quarantine list/replay, and friendly errors."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from personify.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERSONIFY_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def write_ndjson(path: Path) -> Path:
    lines = [
        orjson.dumps(
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "m1",
                "traits": {"email": "ada@example.com", "name": "Ada"},
            }
        ).decode(),
        "{not json",
        orjson.dumps({"type": "track", "userId": "u1", "messageId": "m2"}).decode(),
        orjson.dumps(
            {
                "type": "track",
                "userId": "u1",
                "messageId": "m3",
                "event": "Order Completed",
                "properties": {"revenue": 12},
            }
        ).decode(),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_ndjson_then_show_the_profile(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", "ndjson", str(write_ndjson(tmp_path / "e.ndjson"))])
    assert result.exit_code == 0, result.output
    assert "accepted" in result.output and "quarantined" in result.output
    shown = runner.invoke(app, ["profiles", "show", "--email", "ADA@example.com"])
    assert shown.exit_code == 0, shown.output
    assert "u1" in shown.output and "Ada" in shown.output and "Order Completed" in shown.output


def test_bad_lines_and_invalid_messages_are_quarantined_and_listed(tmp_path: Path) -> None:
    runner.invoke(app, ["import", "ndjson", str(write_ndjson(tmp_path / "e.ndjson"))])
    listed = runner.invoke(app, ["quarantine", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "line 2" in listed.output  # the unparseable line, with its number
    assert "event" in listed.output  # the track without an event name
    # the invalid message is named by its line in the file (line 3), not a batch position
    assert "line 3: event" in listed.output and "batch[" not in listed.output
    replay = runner.invoke(app, ["quarantine", "replay", "--all"])
    assert replay.exit_code == 2  # nothing could be replayed: a failure, not a success
    assert "replayed 0 of 2" in replay.output  # still invalid: nothing silently accepted


def test_reimporting_the_same_file_is_idempotent(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "e.ndjson")
    runner.invoke(app, ["import", "ndjson", str(path)])
    again = runner.invoke(app, ["import", "ndjson", str(path)])
    assert again.exit_code == 0
    assert re.search(r"accepted\s*│\s*0\s", again.output), again.output
    assert re.search(r"duplicates\s*│\s*2\s", again.output), again.output
    # the unparseable line and the invalid message are each listed once, not once per import
    listed = runner.invoke(app, ["quarantine", "list"])
    assert "2 quarantined in all" in listed.output, listed.output


def test_errors_are_printed_with_a_hint_not_a_traceback(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["import", "ndjson", str(tmp_path / "nope.ndjson")])
    assert missing.exit_code == 2
    assert "error:" in missing.output and "Traceback" not in missing.output
    unknown = runner.invoke(app, ["profiles", "show", "--user-id", "ghost"])
    assert unknown.exit_code == 2 and "no profile has user_id" in unknown.output
    both = runner.invoke(app, ["profiles", "show", "p_x", "--user-id", "u"])
    assert both.exit_code == 2 and "exactly one" in both.output


def test_a_typo_in_a_setting_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONIFY_DATA_DIRR", "/tmp/x")
    result = runner.invoke(app, ["quarantine", "list"])
    assert result.exit_code == 2
    assert "PERSONIFY_DATA_DIRR" in result.output


@pytest.mark.parametrize("limit", ["0", "-1", "1001"])
def test_quarantine_list_refuses_a_limit_the_api_would_refuse(limit: str) -> None:
    result = runner.invoke(app, ["quarantine", "list", "--limit", limit])
    assert result.exit_code == 2
    assert "--limit" in result.output and "in all" not in result.output


@pytest.mark.parametrize("events", ["-5", "1001"])
def test_profiles_show_refuses_a_bad_events_count_before_printing(
    tmp_path: Path, events: str
) -> None:
    runner.invoke(app, ["import", "ndjson", str(write_ndjson(tmp_path / "e.ndjson"))])
    result = runner.invoke(app, ["profiles", "show", "--user-id", "u1", "--events", events])
    assert result.exit_code == 2
    assert "--events" in result.output
    assert "traits" not in result.output  # nothing of the profile was printed first


def test_import_ndjson_quarantines_a_message_over_the_http_size_limit(tmp_path: Path) -> None:
    big = {"type": "track", "userId": "u1", "event": "E", "properties": {"x": "a" * 40_000}}
    size = len(orjson.dumps(big))
    path = tmp_path / "e.ndjson"
    path.write_bytes(orjson.dumps(big) + b"\n" + orjson.dumps({**big, "properties": {}}) + b"\n")
    result = runner.invoke(app, ["import", "ndjson", str(path)])
    assert result.exit_code == 0, result.output
    assert re.search(r"accepted\s*│\s*1\s", result.output), result.output
    listed = runner.invoke(app, ["quarantine", "list", "--json"])
    # the reason the HTTP batch path gives, named by the line as other import problems are
    assert f"line 1: message is {size} bytes; the limit is 32768" in listed.output


def test_online_retail_problems_name_the_invoice_not_a_position(tmp_path: Path) -> None:
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
    rows = [
        "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom",
        # a date the collector refuses (before 1970): both the customer's identify and the
        # order carry it
        "536366,22633,HAND WARMER,6,1/1/1900 8:28,1.85,17851,United Kingdom",
    ]
    path = tmp_path / "retail.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    result = runner.invoke(app, ["import", "online-retail", str(path)])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["quarantine", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    fields = re.findall(r'"field": "([^"]*)"', listed.output)
    assert sorted(fields) == [
        "InvoiceNo 536366 (identify of CustomerID 17851): timestamp",
        "InvoiceNo 536366: timestamp",
    ]
