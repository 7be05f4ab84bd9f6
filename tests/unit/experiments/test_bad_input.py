"""Bad input to the experiments API, CLI and library is refused with a message, never a 500."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine
from typer.testing import CliRunner

from personify.api.app import create_app
from personify.cli.main import app
from personify.errors import InvalidInput
from personify.experiments.definitions import check_experiment
from personify.experiments.metrics import parse_metric
from personify.experiments.ope.logged import evaluate_log, parse_target
from personify.experiments.stats import power as pw
from personify.experiments.stats import srm_check

ADMIN = {"Authorization": "Bearer admin", "content-type": "application/json"}
runner = CliRunner()


@pytest.fixture
def client() -> Iterator[TestClient]:
    p, _ = memory_engine()
    with TestClient(create_app(p, own_engine=False), raise_server_exceptions=False) as c:
        yield c
    p.close()


def _post(client: TestClient, path: str, body: Any) -> Any:
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(path, content=text, headers=ADMIN)


def _mean_arms(first: dict[str, Any]) -> dict[str, Any]:
    return {
        "arms": [
            {"name": "A", "type": "mean", **first},
            {"name": "B", "type": "mean", "sum": 12, "sum_squares": 200, "n": 100},
        ]
    }


# 1. SRM with NaN / infinite / negative weights


@pytest.mark.parametrize(
    "weights", [[0.5, math.nan], [0.5, math.inf], [0.0, 0.0], [-1.0, 2.0], [1.0]]
)
def test_srm_refuses_weights_that_are_not_a_split(weights: list[float]) -> None:
    with pytest.raises(InvalidInput, match="weight"):
        srm_check([100, 100], weights)


def test_srm_handles_huge_and_zero_weights() -> None:
    assert srm_check([100, 100], [1e308, 1e308]).expected == (100.0, 100.0)
    assert not srm_check([100, 0], [1.0, 0.0]).mismatch  # an arm turned off, and empty
    assert srm_check([100, 5], [1.0, 0.0]).mismatch  # users in an arm that gets none


def test_srm_nan_weight_over_http_and_cli(client: TestClient) -> None:
    body = (
        '{"arms":[{"name":"A","type":"proportion","sum":10,"n":100},'
        '{"name":"B","type":"proportion","sum":10,"n":100}],"weights":[0.5,NaN]}'
    )
    resp = _post(client, "/v1/experiments/analyze", body)
    assert resp.status_code == 400 and "weights" in resp.json()["message"]
    cli = runner.invoke(app, ["experiments", "srm", "100", "100", "--weights", "0.5,nan"])
    assert cli.exit_code == 2 and "weights must be finite" in cli.output


# 2. 500s: a non-string seed, overflowing sums


def test_assign_refuses_a_non_string_seed(client: TestClient) -> None:
    for field in ("seed", "hashAttribute", "fallbackAttribute"):
        experiment = {"key": "k", "variations": [0, 1], field: {"a": 1}}
        resp = _post(
            client,
            "/v1/experiments/assign",
            {"experiment": experiment, "attributes": {"id": "1"}},
        )
        assert resp.status_code == 400, resp.text
        assert field in {p["field"] for p in resp.json()["problems"]}


def test_analyze_refuses_overflowing_sums(client: TestClient) -> None:
    resp = _post(
        client, "/v1/experiments/analyze", _mean_arms({"sum": 10, "sum_squares": 1e308, "n": 2})
    )
    assert resp.status_code == 400 and "too large" in resp.json()["message"]
    huge = _post(
        client, "/v1/experiments/analyze", _mean_arms({"sum": 1e200, "sum_squares": 1e300, "n": 2})
    )
    assert huge.status_code == 400 and "too large" in huge.json()["message"]


# 3. impossible arm statistics


@pytest.mark.parametrize(
    ("arm", "field"),
    [
        ({"sum": 10, "sum_squares": -5, "n": 100}, "sum_squares"),
        ({"sum": 10, "sum_squares": 0.5, "n": 100}, "sum_squares"),  # below sum^2 / n = 1
        ({"sum": "Infinity", "sum_squares": 5, "n": 100}, "sum"),
        ({"sum": 10, "sum_squares": "NaN", "n": 100}, "sum_squares"),
        ({"sum": 10, "sum_squares": 5, "n": -3}, "n"),
    ],
)
def test_analyze_refuses_impossible_statistics(
    client: TestClient, arm: dict[str, Any], field: str
) -> None:
    resp = _post(client, "/v1/experiments/analyze", _mean_arms(arm))
    assert resp.status_code == 400, resp.text
    assert any(p["field"].endswith(field) for p in resp.json()["problems"])


def test_analyze_accepts_rounding_at_the_bound(client: TestClient) -> None:
    """All units equal: sum_squares == sum^2 / n up to float rounding is fine."""
    values = [0.1] * 30
    arm = {"sum": sum(values), "sum_squares": sum(v * v for v in values), "n": 30}
    resp = _post(client, "/v1/experiments/analyze", _mean_arms(arm))
    assert resp.status_code == 200, resp.text


# 4. report metrics, guardrails and CUPED days


@pytest.mark.parametrize(
    "spec",
    [
        "conversion:",
        "conversion",
        "conversion:Order Completed:-5",
        "conversion:Order Completed:nan",
        "conversion:Order Completed:0",
        "revenue:Order Completed:revenue:inf",
        "revenue:a:b:1:2",
        "ctr::View",
        "ctr:Click",
        "aov:a:b:c",
        "retention:-5:-10",
        "retention:1e308:inf",
        "retention:1:2:3",
        "retention:14:7",
        "retention:5",
        "nope",
    ],
)
def test_parse_metric_refuses_nonsense_and_shows_the_forms(spec: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_metric(spec)
    assert "conversion:EVENT[:DAYS]" in (info.value.hint or "")


def test_parse_metric_still_reads_the_good_forms() -> None:
    assert parse_metric("conversion:Signed Up:3").numerator.end_day == 3.0
    window = parse_metric("retention:0:7").numerator
    assert (window.start_day, window.end_day) == (0.0, 7.0)
    assert parse_metric("ctr:C:V", {"ctr"}).guardrail  # was silently ignored
    assert parse_metric("aov", {"aov"}).guardrail


def test_guardrails_and_cuped_days_are_checked() -> None:
    from personify.experiments.metrics import check_cuped_days, check_guardrails

    metrics = [parse_metric("conversion:Order Completed"), parse_metric("retention")]
    check_guardrails(metrics, ["retention"])
    with pytest.raises(InvalidInput, match="nope") as info:
        check_guardrails(metrics, ["nope"])
    assert "conversion:Order Completed, retention" in (info.value.hint or "")
    assert check_cuped_days(0.0) is None and check_cuped_days(14.0) == 14.0
    for days in (-5.0, math.nan, math.inf):
        with pytest.raises(InvalidInput, match="CUPED"):
            check_cuped_days(days)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    exposures = pd.DataFrame(
        {"unit": [f"u{i}" for i in range(40)], "variant": ["A", "B"] * 20, "exposed_at": 0.0}
    )
    events = pd.DataFrame(
        {"unit": [f"u{i}" for i in range(0, 40, 3)], "event": "Order Completed", "timestamp": 60.0}
    )
    exposures.to_csv(tmp_path / "exposures.csv", index=False)
    events.to_csv(tmp_path / "events.csv", index=False)
    return tmp_path / "exposures.csv", tmp_path / "events.csv"


@pytest.mark.parametrize(
    "extra",
    [
        ["--guardrail", "nope"],
        ["--cuped-days", "-5"],
        ["--cuped-days", "nan"],
        ["--metric", "retention:1:2:3"],
    ],
)
def test_cli_analyze_refuses_bad_guardrails_and_cuped_days(
    tmp_path: Path, extra: list[str]
) -> None:
    exposures, events = _files(tmp_path)
    result = runner.invoke(app, ["experiments", "analyze", str(exposures), str(events), *extra])
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize("extra", [["--guardrail", "nope"], ["--cuped-days", "-5"]])
def test_cli_report_refuses_bad_guardrails_and_cuped_days(
    extra: list[str], tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PERSONIFY_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["experiments", "report", "k", *extra])
    assert result.exit_code == 2 and ("guardrail" in result.output or "CUPED" in result.output)


@pytest.mark.parametrize(
    "query",
    [
        "guardrail=nope",
        "metric=retention:1:2:3",
        "metric=conversion:",
        "cuped_days=inf",
        "cuped_days=nan",
    ],
)
def test_http_report_refuses_bad_metrics(client: TestClient, query: str) -> None:
    resp = client.get(f"/v1/experiments/anything/report?{query}", headers=ADMIN)
    assert resp.status_code == 400, resp.text


# 5. CLI power with absurd users


def test_cli_power_with_absurd_users_is_a_clear_error() -> None:
    result = runner.invoke(
        app,
        ["experiments", "power", "--baseline", "0.05", "--users", "1000000000000000000000"],
    )
    assert result.exit_code == 2 and "minimum detectable lift" in result.output
    nan = runner.invoke(app, ["experiments", "power", "--baseline", "0.05", "--lift", "nan"])
    assert nan.exit_code == 2 and "lift" in nan.output


# 6. messages that blame the right thing


def test_power_blames_the_lift_not_the_baseline(client: TestClient) -> None:
    with pytest.raises(InvalidInput) as info:
        pw.users_per_arm_for_proportion(0.05, 1e308)
    assert [p.field for p in info.value.problems] == ["lift"]
    for lift in ("NaN", "1e308"):
        resp = _post(client, "/v1/experiments/power", f'{{"baseline":0.05,"lift":{lift}}}')
        assert resp.status_code == 400
        fields = [p["field"] for p in resp.json()["problems"]]
        assert fields and all(f.endswith("lift") for f in fields)


def test_ope_weights_huge_or_nan() -> None:
    assert parse_target("weights:a=1e308,b=1e308", ["a", "b"]) == {"a": 0.5, "b": 0.5}
    log = pd.DataFrame({"action": ["a", "b"], "propensity": 0.5, "reward": [1, 0]})
    assert evaluate_log(log, "weights:a=1e308,b=1e308")["ipw"].value == pytest.approx(0.5)
    for spec in ("weights:a=NaN", "weights:a=inf,b=1"):
        with pytest.raises(InvalidInput, match="finite"):
            parse_target(spec, ["a", "b"])


def test_ship_names_the_valid_variants() -> None:
    body = {
        "placement": "hero",
        "status": "shipped",
        "shipped": "nope",
        "variants": [{"key": "control", "content": "a"}, {"key": "loyalty", "content": "b"}],
    }
    [problem] = [p for p in check_experiment("t", body) if p.field == "shipped"]
    assert "'nope'" in problem.message and "control, loyalty" in problem.message
