"""Metrics from events, the analysis with SRM and verdicts, and the three report formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from personify.errors import InvalidInput
from personify.experiments.analysis import analyze
from personify.experiments.metrics import (
    average_order_value,
    click_through,
    conversion,
    retention,
    revenue_per_user,
    unit_values,
)
from personify.experiments.report import chart, table, to_json

DAY = 86_400.0


def _exposures() -> pd.DataFrame:
    return pd.DataFrame(
        {"unit": ["u1", "u2", "u3"], "variant": ["A", "B", "B"], "exposed_at": [0.0, 0.0, 10 * DAY]}
    )


def test_conversion_counts_only_events_inside_the_window_after_exposure() -> None:
    events = pd.DataFrame(
        {
            "unit": ["u1", "u2", "u3", "u3", "zz"],
            "event": ["Order Completed"] * 5,
            "timestamp": [-5.0, 8 * DAY, 11 * DAY, 12 * DAY, 1.0],
        }
    )
    values = unit_values(_exposures(), events, conversion("buy", "Order Completed", within_days=7))
    # u1 bought before exposure, u2 after the window, u3 inside (twice: still one conversion)
    assert values.values.tolist() == [0.0, 0.0, 1.0]


def test_revenue_reads_a_column_or_the_properties_and_filters_with_conditions() -> None:
    events = pd.DataFrame(
        {
            "unit": ["u1", "u2", "u2"],
            "event": ["Order Completed"] * 3,
            "timestamp": [DAY, DAY, 2 * DAY],
            "properties": [{"revenue": 10}, {"revenue": 5}, {"revenue": "7.5"}],
        }
    )
    values = unit_values(_exposures(), events, revenue_per_user())
    assert values.values.tolist() == [10.0, 12.5, 0.0]
    big = conversion("big", "Order Completed", where={"revenue": {"$gt": 6}})
    assert unit_values(_exposures(), events, big).values.tolist() == [1.0, 1.0, 0.0]


def test_ratio_metrics_keep_numerator_and_denominator_per_unit() -> None:
    events = pd.DataFrame(
        {
            "unit": ["u1", "u1", "u1", "u2", "u2"],
            "event": [
                "Content Viewed",
                "Content Viewed",
                "Content Clicked",
                "Order Completed",
                "Order Completed",
            ],
            "timestamp": [1.0, 2.0, 3.0, 4.0, 5.0],
            "revenue": [0, 0, 0, 30.0, 10.0],
        }
    )
    ctr = unit_values(_exposures(), events, click_through())
    assert ctr.values.tolist() == [1.0, 0.0, 0.0]
    assert ctr.denominators is not None and ctr.denominators.tolist() == [2.0, 0.0, 0.0]
    aov = unit_values(_exposures(), events, average_order_value())
    assert aov.values.tolist() == [0.0, 40.0, 0.0]
    assert aov.denominators is not None and aov.denominators.tolist() == [0.0, 2.0, 0.0]


def test_retention_looks_at_a_later_window() -> None:
    events = pd.DataFrame(
        {"unit": ["u1", "u2"], "event": ["Page", "Page"], "timestamp": [8 * DAY, 2 * DAY]}
    )
    values = unit_values(_exposures(), events, retention(start_day=7, end_day=14))
    assert values.values.tolist() == [1.0, 0.0, 0.0]


def test_frames_missing_columns_or_with_duplicate_units_are_refused() -> None:
    events = pd.DataFrame({"unit": [], "event": [], "timestamp": []})
    with pytest.raises(InvalidInput) as caught:
        unit_values(pd.DataFrame({"unit": ["u"]}), events, revenue_per_user())
    assert "exposures.variant" in {p.field for p in caught.value.problems}
    twice = pd.DataFrame({"unit": ["u", "u"], "variant": ["A", "B"], "exposed_at": [0, 1]})
    with pytest.raises(InvalidInput, match="twice"):
        unit_values(twice, events, revenue_per_user())


def _simulated(n: int, shares: tuple[float, float], seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Planted: conversion 10% in A, 12% in B (+20% relative); same spend per buyer."""
    rng = np.random.default_rng(seed)
    variant = np.where(rng.random(n) < shares[0], "A", "B")
    exposures = pd.DataFrame(
        {
            "unit": [f"u{i}" for i in range(n)],
            "variant": variant,
            "exposed_at": rng.random(n) * 5 * DAY,
        }
    )
    bought = rng.random(n) < np.where(variant == "A", 0.10, 0.12)
    events = pd.DataFrame(
        {
            "unit": exposures["unit"][bought].to_numpy(),
            "event": "Order Completed",
            "timestamp": exposures["exposed_at"][bought].to_numpy() + DAY,
            "revenue": rng.gamma(2.0, 25.0, bought.sum()),
        }
    )
    return exposures, events


def test_analysis_finds_the_planted_winner_with_an_interval_covering_the_lift() -> None:
    exposures, events = _simulated(40_000, (0.5, 0.5), seed=7)
    result = analyze(
        exposures,
        events,
        [conversion("purchase", "Order Completed"), revenue_per_user(guardrail=True)],
        variants=["A", "B"],
        weights=[0.5, 0.5],
    )
    purchase = result.results[0]
    assert purchase.significant and purchase.direction == 1
    assert purchase.relative.ci[0] < 0.20 < purchase.relative.ci[1]
    assert not result.srm.mismatch
    assert result.verdict.startswith("B beats A on purchase by")
    assert "guardrail" not in result.verdict  # revenue rises too: no guardrail is hurt


def test_srm_fires_when_assignment_is_skewed() -> None:
    exposures, events = _simulated(20_000, (0.45, 0.55), seed=8)
    result = analyze(
        exposures, events, [conversion("purchase", "Order Completed")], weights=[0.5, 0.5]
    )
    assert result.srm.mismatch
    assert result.verdict.startswith("Sample ratio mismatch")


def test_a_hurt_guardrail_is_called_out() -> None:
    exposures, events = _simulated(40_000, (0.5, 0.5), seed=9)
    result = analyze(
        exposures,
        events,
        [conversion("purchase", "Order Completed", guardrail=True)],
        variants=["B", "A"],  # B as control: A is worse on the guardrail
    )
    assert result.verdict.startswith("Guardrail purchase is hurt: A loses to B")


def test_no_effect_reads_as_not_yet_significant() -> None:
    rng = np.random.default_rng(1)
    exposures = pd.DataFrame(
        {
            "unit": [f"u{i}" for i in range(2000)],
            "variant": rng.choice(["A", "B"], 2000),
            "exposed_at": 0.0,
        }
    )
    bought = rng.random(2000) < 0.1
    events = pd.DataFrame(
        {"unit": exposures["unit"][bought], "event": "Order Completed", "timestamp": 1.0}
    )
    result = analyze(
        exposures, events, [conversion("purchase", "Order Completed")], method="sequential"
    )
    assert "not yet significant on purchase" in result.verdict


def test_reports_render_as_json_table_and_png(tmp_path: Path) -> None:
    exposures, events = _simulated(5000, (0.5, 0.5), seed=3)
    result = analyze(
        exposures,
        events,
        [conversion("purchase", "Order Completed"), revenue_per_user()],
        cuped_days=14,
    )
    data = json.loads(to_json(result))
    assert data["srm"]["mismatch"] is False and len(data["results"]) == 2
    console = Console(record=True, width=200)
    console.print(table(result))
    assert "purchase" in console.export_text()
    png = chart(result, tmp_path / "chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analysis_refuses_what_it_cannot_analyse() -> None:
    exposures, events = _simulated(100, (0.5, 0.5), seed=1)
    with pytest.raises(InvalidInput):
        analyze(exposures, events, [])
    with pytest.raises(InvalidInput) as caught:
        analyze(exposures, events, [revenue_per_user()], variants=["A", "Z"])
    assert "variants.Z" in {p.field for p in caught.value.problems}


def test_a_metric_without_data_yet_is_reported_not_fatal() -> None:
    exposures = pd.DataFrame(
        {"unit": [f"u{i}" for i in range(40)], "variant": ["A", "B"] * 20, "exposed_at": 0.0}
    )
    events = pd.DataFrame(
        {
            "unit": ["u1", "u3"],
            "event": ["Order Completed"] * 2,
            "timestamp": [1.0, 1.0],
            "revenue": 5.0,
        }
    )
    result = analyze(
        exposures, events, [conversion("purchase", "Order Completed"), revenue_per_user()]
    )
    assert result.results == ()  # control A (even units) has no orders: no relative lift yet
    assert len(result.pending) == 2
    assert "Not enough data yet for purchase (B vs A): relative lift is undefined" in result.verdict


def test_times_may_be_iso_text_datetimes_or_epoch_seconds() -> None:
    exposures = pd.DataFrame(
        {
            "unit": ["u1", "u2"],
            "variant": ["A", "B"],
            "exposed_at": ["2026-11-01T00:00:00Z", "2026-11-01T00:00:00+01:00"],
        }
    )
    events = pd.DataFrame(
        {
            "unit": ["u1", "u2"],
            "event": ["Order Completed"] * 2,
            "timestamp": pd.to_datetime(["2026-11-02T00:00:00Z", "2026-10-31T22:00:00Z"], utc=True),
        }
    )
    values = unit_values(exposures, events, conversion("buy", "Order Completed", within_days=7))
    assert values.values.tolist() == [1.0, 0.0]  # u2's event is before its exposure (23:00 UTC)
    bad = exposures.assign(exposed_at=["yesterday", "soon"])
    with pytest.raises(InvalidInput) as caught:
        unit_values(bad, events, conversion("buy", "Order Completed"))
    assert caught.value.problems[0].field == "exposed_at"
