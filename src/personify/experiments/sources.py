"""Where a served experiment's report reads from: the event store or the decision log."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from personify.experiments.analysis import ExperimentAnalysis, analyze
from personify.experiments.definitions import ExperimentDef
from personify.experiments.metrics import Metric
from personify.experiments.serving import ExperimentService


def events_frame(batches: Iterator[list[dict[str, Any]]]) -> pd.DataFrame:
    """Event-store rows (``EventStore.scan``) as the events frame metrics read."""
    rows = []
    for batch in batches:
        for row in batch:
            payload = row.get("payload") or {}
            if isinstance(payload, str | bytes):
                import orjson

                payload = orjson.loads(payload)
            rows.append(
                {
                    "unit": row.get("profile_id"),
                    "event": row.get("event") or row.get("type"),
                    "timestamp": pd.Timestamp(row["timestamp"]),
                    "properties": payload.get("properties") or {},
                }
            )
    frame = pd.DataFrame(rows, columns=["unit", "event", "timestamp", "properties"])
    if not frame.empty:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def variants_and_weights(experiment: ExperimentDef) -> tuple[Sequence[str], Sequence[float]]:
    return [v.key for v in experiment.variants], list(experiment.weights)


def analyze_experiment(
    service: ExperimentService,
    key: str,
    events: pd.DataFrame,
    metrics: Sequence[Metric],
    **options: Any,
) -> ExperimentAnalysis:
    """Analyse a served experiment: its logged exposures, these events, its configured split."""
    experiment = service.experiment(key)
    variants, weights = variants_and_weights(experiment)
    return analyze(
        service.exposures.frame(key),
        events,
        metrics,
        experiment=key,
        variants=variants,
        weights=weights,
        **options,
    )


def metric_events(metrics: Sequence[Metric]) -> list[str] | None:
    """The event names these metrics read (None: any event, e.g. retention)."""
    names: set[str] = set()
    for metric in metrics:
        for part in (metric.numerator, metric.denominator):
            if part is None:
                continue
            if not part.events:
                return None
            names.update(part.events)
    return sorted(names)


def events_from_outcomes(
    outcomes: Sequence[Mapping[str, Any]], exposures: pd.DataFrame
) -> pd.DataFrame:
    """Rewards attributed to an experiment's decisions, as an events frame.

    Used when the event history cannot be scanned from this process (under ``serve`` it lives
    in the worker): each decision's clicks become one ``Content Clicked`` and its orders
    ``Order Completed`` events carrying the attributed revenue, stamped at the unit's
    exposure. Attribution already ties them to the decision, so the metric windows are not
    applied to them.
    """
    exposed_at = dict(zip(exposures["unit"], exposures["exposed_at"], strict=True))
    rows: list[dict[str, Any]] = []
    for row in outcomes:
        unit = row.get("unit")
        if unit not in exposed_at:
            continue
        at = exposed_at[unit]
        if row.get("clicked"):
            rows.append({"unit": unit, "event": "Content Clicked", "timestamp": at, "revenue": 0.0})
        orders = int(row.get("conversions") or 0)
        for order in range(orders):
            revenue = float(row.get("revenue") or 0.0) if order == 0 else 0.0
            rows.append(
                {"unit": unit, "event": "Order Completed", "timestamp": at, "revenue": revenue}
            )
    return pd.DataFrame(rows, columns=["unit", "event", "timestamp", "revenue"])
