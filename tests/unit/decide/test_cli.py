"""``personify decide`` and ``personify decide report`` on an embedded data dir."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from personify.cli.main import app
from personify.decide import DEMO_WORKSPACE

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERSONIFY_DATA_DIR", str(tmp_path / "data"))
    applied = runner.invoke(app, ["apply", str(DEMO_WORKSPACE)])
    assert applied.exit_code == 0, applied.output
    return tmp_path / "data"


def test_decide_prints_the_decision_and_its_reasons() -> None:
    result = runner.invoke(
        app,
        [
            "decide",
            "--anonymous-id",
            "a-1",
            "-p",
            "home_hero",
            "-p",
            "checkout_exit_intent",
            "--context",
            '{"cart_value": 40}',
        ],
    )
    assert result.exit_code == 0, result.output
    assert "welcome_banner" in result.output and "[fallback]" in result.output
    assert "free_shipping_nudge" in result.output
    assert "You are 10.00 away from free delivery" in result.output
    assert "rule 'near_free_shipping' matched" in result.output


def test_decide_json_and_the_report_count_logged_decisions() -> None:
    result = runner.invoke(app, ["decide", "--user", "u-1", "-p", "home_hero", "--json"])
    assert result.exit_code == 0, result.output
    [decision] = orjson.loads(result.output)
    assert decision["content"]["key"] == "welcome_banner"
    runner.invoke(app, ["decide", "--user", "u-1", "-p", "home_hero", "--no-log"])
    report = runner.invoke(app, ["decide", "report", "--json"])
    assert report.exit_code == 0, report.output
    [row] = orjson.loads(report.output)
    assert (row["content"], row["impressions"], row["clicks"]) == ("welcome_banner", 1, 0)


def test_the_report_reads_since_as_an_instant_and_refuses_garbage() -> None:
    runner.invoke(app, ["decide", "--user", "u-1", "-p", "home_hero"])
    # an hour ago, written at +05:00: as text it sorts after the stored UTC times
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).astimezone(timezone(timedelta(hours=5)))
    report = runner.invoke(app, ["decide", "report", "--json", "--since", hour_ago.isoformat()])
    assert report.exit_code == 0, report.output
    assert [row["impressions"] for row in orjson.loads(report.output)] == [1]
    for bad in ("garbage", "0001-01-01T00:00:00+01:00"):
        refused = runner.invoke(app, ["decide", "report", "--since", bad])
        assert refused.exit_code == 2 and "is not an ISO-8601 timestamp" in refused.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decide", "--user", "u"], "give at least one --placement"),
        (["decide", "--user", "u", "-p", "nowhere"], "no placement named 'nowhere'"),
        (["decide", "-p", "home_hero"], "give userId or anonymousId"),
        (["decide", "--user", "u", "-p", "home_hero", "--context", "{oops"], "not valid JSON"),
        (["decide", "--user", "u", "-p", "home_hero", "--channel", "fax"], "context.channel"),
    ],
)
def test_decide_explains_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " ")
