"""Experiment metrics computed from events, per exposed unit.

Every metric is evaluated per unit (person) over a window that starts at the unit's first
exposure, so units exposed late in the test are not penalised for having had less time,
and nothing that happened before the exposure is credited to the variant:

* :func:`conversion`: 1 if any matching event happens within ``within_days`` (a 0/1 metric,
  analysed as a proportion);
* :func:`revenue_per_user`: the sum of a value (``revenue``) of matching events;
* :func:`click_through`: clicks / views, a **ratio** of two per-unit counts (delta method);
* :func:`average_order_value`: revenue / orders, a ratio as well;
* :func:`retention`: 1 if the unit is active between day ``start_day`` and ``end_day``.

A metric can be a **guardrail** (``guardrail=True``): it is not what the test optimises,
but a significant move in the wrong direction blocks shipping.

Frames: ``exposures`` has ``unit``, ``variant``, ``exposed_at``; ``events`` has ``unit``,
``event``, ``timestamp`` and any value columns (``revenue``...) or a ``properties`` column of
dicts. Times are datetimes or epoch seconds.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from personify.errors import InvalidInput, Problem
from personify.segments import compile_condition

DAY: Final = 86_400.0
Kind = Literal["proportion", "mean", "ratio"]


@dataclass(frozen=True)
class Aggregate:
    """One per-unit aggregate: count or sum of a value over matching events in a window."""

    events: tuple[str, ...]
    value: str | None = None  # None: count the events
    where: Mapping[str, Any] | None = None
    start_day: float = 0.0
    end_day: float = 7.0


@dataclass(frozen=True)
class Metric:
    """A named metric: what to aggregate and how to test it."""

    name: str
    kind: Kind
    numerator: Aggregate
    denominator: Aggregate | None = None
    guardrail: bool = False
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if (self.kind == "ratio") != (self.denominator is not None):
            raise InvalidInput(
                f"metric {self.name!r}: only a ratio metric has a denominator, and it needs one",
                hint="use click_through / average_order_value, or give kind='ratio' a denominator",
                problems=[Problem("denominator", "inconsistent with kind")],
            )


def _events(event: str | Sequence[str]) -> tuple[str, ...]:
    return (event,) if isinstance(event, str) else tuple(event)


def conversion(
    name: str,
    event: str | Sequence[str],
    *,
    within_days: float = 7.0,
    where: Mapping[str, Any] | None = None,
    guardrail: bool = False,
) -> Metric:
    """Converted: at least one matching event within ``within_days`` of exposure."""
    return Metric(
        name,
        "proportion",
        Aggregate(_events(event), None, where, 0.0, within_days),
        guardrail=guardrail,
    )


def revenue_per_user(
    name: str = "revenue_per_user",
    *,
    event: str | Sequence[str] = "Order Completed",
    value: str = "revenue",
    within_days: float = 7.0,
    guardrail: bool = False,
) -> Metric:
    """Sum of ``value`` over matching events per exposed unit (zero for non-buyers)."""
    return Metric(
        name, "mean", Aggregate(_events(event), value, None, 0.0, within_days), guardrail=guardrail
    )


def click_through(
    name: str = "ctr",
    *,
    click: str | Sequence[str] = "Content Clicked",
    view: str | Sequence[str] = "Content Viewed",
    within_days: float = 7.0,
    where: Mapping[str, Any] | None = None,
    guardrail: bool = False,
) -> Metric:
    """Clicks per view, pooled over units (a ratio metric: users are the independent units)."""
    return Metric(
        name,
        "ratio",
        Aggregate(_events(click), None, where, 0.0, within_days),
        Aggregate(_events(view), None, where, 0.0, within_days),
        guardrail=guardrail,
    )


def average_order_value(
    name: str = "aov",
    *,
    event: str | Sequence[str] = "Order Completed",
    value: str = "revenue",
    within_days: float = 7.0,
    guardrail: bool = False,
) -> Metric:
    """Revenue per order, among the orders of exposed units (a ratio metric)."""
    return Metric(
        name,
        "ratio",
        Aggregate(_events(event), value, None, 0.0, within_days),
        Aggregate(_events(event), None, None, 0.0, within_days),
        guardrail=guardrail,
    )


def retention(
    name: str = "retention",
    *,
    start_day: float = 7.0,
    end_day: float = 14.0,
    event: str | Sequence[str] = (),
    guardrail: bool = False,
) -> Metric:
    """Active (any event, or one of ``event``) from ``start_day`` to ``end_day`` after exposure."""
    return Metric(
        name,
        "proportion",
        Aggregate(_events(event), None, None, start_day, end_day),
        guardrail=guardrail,
    )


def _seconds(values: pd.Series, column: str = "timestamp") -> np.ndarray:
    """Epoch seconds from numbers, datetimes (any time zone) or ISO-8601 text."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return np.asarray(values, dtype=float)
    try:
        stamps = pd.to_datetime(values, utc=True, format="mixed")
    except (ValueError, TypeError):
        raise InvalidInput(
            f"cannot read the times in {column!r}",
            hint="use epoch seconds, datetimes or ISO-8601 text such as 2026-11-01T12:00:00Z",
            problems=[Problem(column, "not a time")],
        ) from None
    return np.asarray((stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds(), dtype=float)


def check_frames(exposures: pd.DataFrame, events: pd.DataFrame) -> None:
    problems = [
        Problem(f"exposures.{c}", "missing column")
        for c in ("unit", "variant", "exposed_at")
        if c not in exposures.columns
    ] + [
        Problem(f"events.{c}", "missing column")
        for c in ("unit", "event", "timestamp")
        if c not in events.columns
    ]
    if problems:
        raise InvalidInput(
            "exposures and events lack required columns",
            hint="exposures: unit, variant, exposed_at; events: unit, event, timestamp (+ values)",
            problems=problems,
        )
    if exposures["unit"].duplicated().any():
        raise InvalidInput(
            "a unit appears twice in the exposures",
            hint="keep each unit's first exposure only (the exposure log does this)",
            problems=[Problem("exposures.unit", "duplicated")],
        )


def _values(events: pd.DataFrame, column: str) -> np.ndarray:
    if column in events.columns:
        return np.asarray(pd.to_numeric(events[column], errors="coerce").fillna(0.0), dtype=float)
    if "properties" in events.columns:
        raw = [p.get(column) if isinstance(p, Mapping) else None for p in events["properties"]]
        return np.asarray(
            pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").fillna(0.0), dtype=float
        )
    raise InvalidInput(
        f"events have no {column!r} value",
        hint=f"add a {column!r} column or a properties column holding it",
        problems=[Problem(f"events.{column}", "missing")],
    )


def aggregate(
    exposures: pd.DataFrame, events: pd.DataFrame, spec: Aggregate, *, pre_days: float | None = None
) -> np.ndarray:
    """Per-unit aggregate aligned with ``exposures`` rows (0 for units without events).

    With ``pre_days`` the window is the ``pre_days`` before exposure instead (the CUPED
    covariate).
    """
    units = exposures["unit"].to_numpy()
    exposed = _seconds(exposures["exposed_at"], "exposed_at")
    selected = events
    if spec.events:
        selected = selected[selected["event"].isin(spec.events)]
    if spec.where:
        test = compile_condition(spec.where)
        props = (
            selected["properties"]
            if "properties" in selected.columns
            else pd.Series([{}] * len(selected))
        )
        selected = selected[[bool(test(p if isinstance(p, Mapping) else {})) for p in props]]
    position = pd.Series(np.arange(units.size), index=units)
    row = position.reindex(selected["unit"].to_numpy()).to_numpy()
    known = ~np.isnan(row)
    if not known.any():
        return np.zeros(units.size)
    row = row[known].astype(int)
    at = _seconds(selected["timestamp"])[known]
    offset = at - exposed[row]
    if pre_days is None:
        inside = (offset >= spec.start_day * DAY) & (offset < spec.end_day * DAY)
    else:
        inside = (offset < 0) & (offset >= -pre_days * DAY)
    weights = _values(selected, spec.value)[known] if spec.value else np.ones(row.size)
    return np.bincount(row[inside], weights=weights[inside], minlength=units.size)


@dataclass(frozen=True)
class UnitValues:
    """A metric's per-unit values (and denominators for ratios), aligned with the exposures."""

    metric: Metric
    variants: np.ndarray
    values: np.ndarray
    denominators: np.ndarray | None
    covariates: np.ndarray | None


def unit_values(
    exposures: pd.DataFrame,
    events: pd.DataFrame,
    metric: Metric,
    *,
    cuped_days: float | None = None,
) -> UnitValues:
    """Evaluate ``metric`` for every exposed unit; optionally its pre-exposure covariate."""
    check_frames(exposures, events)
    values = aggregate(exposures, events, metric.numerator)
    if metric.kind == "proportion":
        values = (values > 0).astype(float)
    denominators = (
        aggregate(exposures, events, metric.denominator) if metric.denominator is not None else None
    )
    covariates = None
    if cuped_days and metric.kind != "ratio":
        covariates = aggregate(exposures, events, metric.numerator, pre_days=cuped_days)
        if metric.kind == "proportion":
            covariates = (covariates > 0).astype(float)
    return UnitValues(
        metric, exposures["variant"].astype(str).to_numpy(), values, denominators, covariates
    )


METRIC_FORMS: Final = (
    "conversion:EVENT[:DAYS], revenue[:EVENT[:VALUE[:DAYS]]], ctr:CLICK:VIEW, "
    "aov[:EVENT[:VALUE]] or retention[:FROM:TO] (DAYS > 0, 0 <= FROM < TO, in days)"
)


class _BadMetric(Exception):
    """One part of a metric spec is wrong (the message says which)."""


def _days(text: str, what: str, *, zero: bool = False) -> float:
    try:
        days = float(text)
    except ValueError:
        raise _BadMetric(f"{what} {text!r} is not a number of days") from None
    if not math.isfinite(days) or days < 0 or (days == 0 and not zero):
        raise _BadMetric(f"{what} must be a finite number of days {'>=' if zero else '>'} 0")
    return days


def _name(text: str, what: str) -> str:
    if not text.strip():
        raise _BadMetric(f"the {what} is empty")
    return text


def _arity(kind: str, args: Sequence[str], allowed: Collection[int]) -> None:
    if len(args) not in allowed:
        raise _BadMetric(
            f"{kind} takes {' or '.join(map(str, sorted(allowed)))} part(s) after "
            f"the name, got {len(args)}"
        )


def _parse(kind: str, args: list[str], guardrails: Collection[str]) -> Metric:
    if kind == "conversion":
        _arity(kind, args, (1, 2))
        event = _name(args[0], "event")
        days = _days(args[1], "DAYS") if len(args) > 1 else 7.0
        name = f"conversion:{event}"
        return conversion(name, event, within_days=days, guardrail=name in guardrails)
    if kind == "revenue":
        _arity(kind, args, (0, 1, 2, 3))
        event = _name(args[0], "event") if args else "Order Completed"
        value = _name(args[1], "value column") if len(args) > 1 else "revenue"
        days = _days(args[2], "DAYS") if len(args) > 2 else 7.0
        return revenue_per_user(
            "revenue_per_user",
            event=event,
            value=value,
            within_days=days,
            guardrail="revenue_per_user" in guardrails,
        )
    if kind == "ctr":
        _arity(kind, args, (2,))
        click, view = _name(args[0], "click event"), _name(args[1], "view event")
        return click_through("ctr", click=click, view=view, guardrail="ctr" in guardrails)
    if kind == "aov":
        _arity(kind, args, (0, 1, 2))
        event = _name(args[0], "event") if args else "Order Completed"
        value = _name(args[1], "value column") if len(args) > 1 else "revenue"
        return average_order_value("aov", event=event, value=value, guardrail="aov" in guardrails)
    if kind == "retention":
        _arity(kind, args, (0, 2))
        start, end = (7.0, 14.0)
        if args:
            start, end = _days(args[0], "FROM", zero=True), _days(args[1], "TO")
            if start >= end:
                raise _BadMetric(f"FROM ({start:g}) must be before TO ({end:g})")
        return retention(
            "retention", start_day=start, end_day=end, guardrail="retention" in guardrails
        )
    raise _BadMetric(f"unknown metric kind {kind!r}")


def parse_metric(spec: str, guardrails: Collection[str] = ()) -> Metric:
    """``conversion:EVENT[:DAYS]``, ``revenue[:EVENT[:VALUE[:DAYS]]]``, ``ctr:CLICK:VIEW``,
    ``aov[:EVENT[:VALUE]]`` or ``retention[:FROM:TO]``.

    >>> parse_metric("retention:1:7").numerator.end_day
    7.0
    """
    kind, *args = spec.split(":")
    try:
        return _parse(kind, args, guardrails)
    except _BadMetric as exc:
        raise InvalidInput(
            f"cannot read the metric {spec!r}: {exc}",
            hint=f"use {METRIC_FORMS}",
            problems=[Problem("metric", f"{spec}: {exc}")],
        ) from None


def check_guardrails(metrics: Sequence[Metric], guardrails: Collection[str]) -> None:
    """Refuse a guardrail that names none of ``metrics`` (it would be silently ignored)."""
    names = [m.name for m in metrics]
    unknown = [g for g in guardrails if g not in names]
    if unknown:
        raise InvalidInput(
            f"guardrail {', '.join(map(repr, unknown))} names none of the metrics",
            hint=f"a guardrail is the name of one of the metrics: {', '.join(names)}",
            problems=[Problem("guardrail", g) for g in unknown],
        )


def check_cuped_days(days: float | None) -> float | None:
    """CUPED's pre-exposure window: ``None`` or 0 is off, otherwise finite days > 0."""
    if days is None or days == 0:
        return None
    if not math.isfinite(days) or days < 0:
        raise InvalidInput(
            f"CUPED days must be a finite number of days > 0 (0 turns CUPED off), not {days}",
            hint="e.g. 14 uses the two weeks before each unit's exposure",
            problems=[Problem("cuped_days", "finite, >= 0")],
        )
    return days
