"""``personify segments``: templates, save from a file, dry run, members export, bad input."""

from __future__ import annotations

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


@pytest.fixture
def imported(tmp_path: Path) -> None:
    lines = [
        {
            "type": "track",
            "userId": f"u{i}",
            "messageId": f"m{i}",
            "event": "Order Completed",
            "properties": {"revenue": 10 * i},
            "timestamp": "2026-11-01T10:00:00Z",
        }
        for i in range(1, 4)
    ]
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(orjson.dumps(line).decode() for line in lines))
    result = runner.invoke(app, ["import", "ndjson", str(path)])
    assert result.exit_code == 0, result.output


def test_save_dry_run_list_and_export(imported: None, tmp_path: Path) -> None:
    seg = tmp_path / "big.yaml"
    seg.write_text("key: big\nname: Big spenders\ncondition:\n  computed.revenue: {$gte: 20}\n")
    dry = runner.invoke(
        app, ["segments", "dry-run", "--condition", '{"computed.revenue": {"$gte": 20}}']
    )
    assert dry.exit_code == 0 and "2 profiles match" in dry.output, dry.output
    saved = runner.invoke(app, ["segments", "save", str(seg)])
    assert saved.exit_code == 0 and "2 members" in saved.output, saved.output
    listed = runner.invoke(app, ["segments", "list", "--json"])
    assert orjson.loads(listed.output)[0]["size"] == 2
    out = tmp_path / "big.csv"
    exported = runner.invoke(app, ["segments", "members", "big", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert sorted(line.split(",")[2] for line in out.read_text().splitlines()[1:]) == ["u2", "u3"]
    history = runner.invoke(app, ["segments", "history", "big"])
    assert history.exit_code == 0 and "cli" in history.output


def test_templates_and_bad_input_say_what_to_fix(imported: None, tmp_path: Path) -> None:
    listed = runner.invoke(app, ["segments", "templates"])
    assert listed.exit_code == 0 and "cart_abandoner" in listed.output
    made = runner.invoke(
        app, ["segments", "from-template", "lapsing_customer", "--param", "inactive_for=1d"]
    )
    assert made.exit_code == 0, made.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: bad\ncondition:\n  $event: {name: X, within: 7 days}\n")
    result = runner.invoke(app, ["segments", "save", str(bad)])
    assert result.exit_code != 0
    assert "condition.$event.within" in result.output and "7d" in result.output
    wrong_param = runner.invoke(
        app, ["segments", "from-template", "new_visitor", "--param", "nope"]
    )
    assert wrong_param.exit_code != 0 and "name=value" in wrong_param.output
    unknown = runner.invoke(app, ["segments", "show", "ghost"])
    assert unknown.exit_code != 0 and "ghost" in unknown.output


def _flat(output: str) -> str:
    """The output with line wrapping undone (the console wraps long messages)."""
    return " ".join(output.split())


def test_a_malformed_param_says_which_and_how_to_write_it(imported: None) -> None:
    result = runner.invoke(
        app, ["segments", "from-template", "high_value", "--param", "min_orders=[1"]
    )
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "min_orders=[1" in _flat(result.output) and "not valid YAML" in _flat(result.output)
    assert "name=value" in _flat(result.output)


def test_durations_over_100_years_are_refused(imported: None, tmp_path: Path) -> None:
    dry = runner.invoke(
        app,
        [
            "segments",
            "dry-run",
            "--condition",
            '{"$event": {"name": "Order Completed", "within": "99999999999d"}}',
        ],
    )
    assert dry.exit_code == 2, dry.output
    assert "$event.within" in _flat(dry.output) and "36500d (100 years)" in _flat(dry.output)
    seg = tmp_path / "buyers.yaml"
    seg.write_text("key: buyers\ncondition:\n  computed.orders: {$gte: 1}\n")
    assert runner.invoke(app, ["segments", "save", str(seg)]).exit_code == 0
    size = runner.invoke(app, ["segments", "size", "buyers", "--every", "9999999999d"])
    assert size.exit_code == 2, size.output
    assert "every" in _flat(size.output) and "36500d (100 years)" in _flat(size.output)


def test_rollback_to_a_version_beyond_sqlite_is_refused(imported: None, tmp_path: Path) -> None:
    seg = tmp_path / "buyers.yaml"
    seg.write_text("key: buyers\ncondition:\n  computed.orders: {$gte: 1}\n")
    assert runner.invoke(app, ["segments", "save", str(seg)]).exit_code == 0
    result = runner.invoke(app, ["segments", "rollback", "buyers", "99999999999999999999"])
    assert result.exit_code == 2, result.output
    assert "version" in _flat(result.output) and str(2**63 - 1) in _flat(result.output)
