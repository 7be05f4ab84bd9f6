"""Customer features computed from the event store, "as of" a cutoff, in one DuckDB query.

The source is any table or view with the event-store columns ``profile_id``, ``type``,
``event``, ``timestamp`` (TIMESTAMPTZ), ``session_id`` and ``payload`` (the Segment message as
JSON): the live ``events`` table of :class:`~personify.storage.duckdb.DuckDbEventStore`, or a
view over a Parquet file or pandas frame (:mod:`personify.models.sources`). Every feature is a
named, documented SQL aggregate (:data:`FEATURES`), so the distributed batch engine can run the
same definitions on Spark SQL.

Point-in-time correctness: every relation below filters ``timestamp < cutoff`` first, so a
feature "as of" a cutoff cannot see anything that happened at or after it, and a training set
built this way has no leakage (``tests/unit/models/test_features.py`` checks it).

>>> import duckdb, pandas as pd
>>> from personify.models.sources import register_frame
>>> con = duckdb.connect()
>>> frame = pd.DataFrame({"profile_id": ["p1"], "type": ["track"], "event": ["Order Completed"],
...     "timestamp": [pd.Timestamp("2024-01-01", tz="UTC")], "session_id": ["s1"],
...     "payload": ['{"properties": {"revenue": 30}}']})
>>> _ = register_frame(con, frame)
>>> build_features(con, "events", as_of="2024-01-11").loc["p1", "monetary"]
30.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from personify.errors import InvalidInput, Problem
from personify.profiles.records import iso

ORDER = "Order Completed"
REFUND = "Order Refunded"
# Events counted per window (Segment e-commerce names plus the page/screen message types).
COUNTED_EVENTS = (
    ORDER,
    REFUND,
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Product List Viewed",
    "page",
)
WINDOWS = (30, 90)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class Feature:
    """One declared feature: its column name, what it means, and its SQL (per profile)."""

    name: str
    description: str
    sql: str


# Aggregates over ``ev`` (events before the cutoff) joined with ``o`` (orders), ``s``
# (sessions) and ``g`` (gaps between orders), all grouped per profile. ``$cutoff`` is bound.
FEATURES: tuple[Feature, ...] = (
    Feature("tenure_days", "days from first event to the cutoff", "ev.tenure_days"),
    Feature("active_days", "distinct days with any event", "ev.active_days"),
    Feature("events_total", "events of any type", "ev.events_total"),
    Feature("recency_days", "days from the last order to the cutoff (RFM R)", "o.recency_days"),
    Feature("days_since_last_event", "days from the last event to the cutoff", "ev.idle_days"),
    Feature("frequency", "orders placed (RFM F)", "COALESCE(o.orders, 0)"),
    Feature("monetary", "total order value (RFM M)", "COALESCE(o.monetary, 0)"),
    Feature("average_order_value", "mean order value", "o.aov"),
    Feature("max_order_value", "largest order value", "o.max_order"),
    Feature("first_order_days", "days from the first order to the cutoff", "o.first_order_days"),
    Feature("interpurchase_mean_days", "mean days between orders", "g.gap_mean"),
    Feature("interpurchase_std_days", "spread of days between orders", "g.gap_std"),
    Feature(
        "overdue_ratio",
        "days since the last order over the mean gap (>1: later than usual)",
        "o.recency_days / NULLIF(g.gap_mean, 0)",
    ),
    Feature("refunds", "refunds received", "COALESCE(o.refunds, 0)"),
    Feature("refunded_value", "value refunded", "COALESCE(o.refunded, 0)"),
    Feature("sessions", "distinct sessions", "COALESCE(s.sessions, 0)"),
    Feature("session_minutes_mean", "mean session duration in minutes", "s.minutes_mean"),
    Feature(
        "support_tickets",
        "support-ticket events (names containing 'ticket')",
        "ev.tickets",
    ),
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def window_features() -> list[Feature]:
    """Event counts by type over the last 30 / 90 days before the cutoff."""
    out = []
    for name in COUNTED_EVENTS:
        for days in WINDOWS:
            out.append(
                Feature(
                    f"n_{_slug(name)}_{days}d",
                    f"'{name}' events in the {days} days before the cutoff",
                    f"ev.n_{_slug(name)}_{days}d",
                )
            )
    return out


def _window_sql() -> str:
    parts = []
    for name in COUNTED_EVENTS:
        match = "type = 'page'" if name == "page" else f"event = '{name}'"
        for days in WINDOWS:
            parts.append(
                f"COUNT(*) FILTER (WHERE {match} AND ts >= CAST($cutoff AS TIMESTAMPTZ) "
                f"- INTERVAL {days} DAY) AS n_{_slug(name)}_{days}d"
            )
    return ",\n  ".join(parts)


# An order's value as the profile processor computes it: revenue, else total, else products.
ORDER_AMOUNT_SQL = """COALESCE(
    TRY_CAST(json_extract_string(payload, '$.properties.revenue') AS DOUBLE),
    TRY_CAST(json_extract_string(payload, '$.properties.total') AS DOUBLE),
    list_sum(list_transform(
        CAST(json_extract(payload, '$.properties.products') AS JSON[]),
        lambda x: TRY_CAST(x->>'price' AS DOUBLE)
                  * COALESCE(TRY_CAST(x->>'quantity' AS DOUBLE), 1))),
    0)"""


def _scope(profile_ids: list[str] | None) -> str:
    if profile_ids is None:
        return ""
    return " AND profile_id IN (SELECT unnest(CAST($ids AS VARCHAR[])))"


def _query(source: str, scope: str = "") -> str:
    days = "(epoch(CAST($cutoff AS TIMESTAMPTZ)) - epoch({col})) / 86400.0"
    selects = ",\n  ".join(f"{f.sql} AS {f.name}" for f in (*FEATURES, *window_features()))
    return f"""
WITH e AS (
  SELECT profile_id, type, event, "timestamp" AS ts, session_id, payload
  FROM {source}
  WHERE "timestamp" < CAST($cutoff AS TIMESTAMPTZ) AND profile_id IS NOT NULL{scope}
),
ev AS (
  SELECT profile_id,
  {days.format(col="MIN(ts)")} AS tenure_days,
  {days.format(col="MAX(ts)")} AS idle_days,
  COUNT(DISTINCT CAST(ts AS DATE)) AS active_days,
  COUNT(*) AS events_total,
  COUNT(*) FILTER (WHERE event ILIKE '%ticket%') AS tickets,
  {_window_sql()}
  FROM e GROUP BY profile_id
),
orders AS (
  SELECT profile_id, ts, event, {ORDER_AMOUNT_SQL} AS amount
  FROM e WHERE event IN ('{ORDER}', '{REFUND}')
),
o AS (
  SELECT profile_id,
  COUNT(*) FILTER (WHERE event = '{ORDER}') AS orders,
  SUM(amount) FILTER (WHERE event = '{ORDER}') AS monetary,
  AVG(amount) FILTER (WHERE event = '{ORDER}') AS aov,
  MAX(amount) FILTER (WHERE event = '{ORDER}') AS max_order,
  {days.format(col=f"MAX(ts) FILTER (WHERE event = '{ORDER}')")} AS recency_days,
  {days.format(col=f"MIN(ts) FILTER (WHERE event = '{ORDER}')")} AS first_order_days,
  COUNT(*) FILTER (WHERE event = '{REFUND}') AS refunds,
  SUM(ABS(amount)) FILTER (WHERE event = '{REFUND}') AS refunded
  FROM orders GROUP BY profile_id
),
gaps AS (
  SELECT profile_id,
  (epoch(ts) - epoch(LAG(ts) OVER (PARTITION BY profile_id ORDER BY ts))) / 86400.0 AS gap
  FROM orders WHERE event = '{ORDER}'
),
g AS (
  SELECT profile_id, AVG(gap) AS gap_mean, STDDEV_SAMP(gap) AS gap_std
  FROM gaps WHERE gap IS NOT NULL GROUP BY profile_id
),
sess AS (
  SELECT profile_id, session_id, (epoch(MAX(ts)) - epoch(MIN(ts))) / 60.0 AS minutes
  FROM e WHERE session_id IS NOT NULL GROUP BY profile_id, session_id
),
s AS (
  SELECT profile_id, COUNT(*) AS sessions, AVG(minutes) AS minutes_mean
  FROM sess GROUP BY profile_id
)
SELECT ev.profile_id,
  {selects}
FROM ev
LEFT JOIN o ON o.profile_id = ev.profile_id
LEFT JOIN g ON g.profile_id = ev.profile_id
LEFT JOIN s ON s.profile_id = ev.profile_id
ORDER BY ev.profile_id
"""


def _category_query(source: str, scope: str = "") -> str:
    return f"""
WITH e AS (
  SELECT profile_id, event, payload FROM {source}
  WHERE "timestamp" < CAST($cutoff AS TIMESTAMPTZ) AND profile_id IS NOT NULL{scope}
    AND event IN ('Product Viewed', 'Product Added', '{ORDER}')
),
c AS (
  SELECT profile_id, json_extract_string(payload, '$.properties.category') AS category
  FROM e WHERE event <> '{ORDER}'
  UNION ALL
  SELECT profile_id, json_extract_string(p, '$.category') AS category
  FROM e, unnest(CAST(json_extract(payload, '$.properties.products') AS JSON[])) AS t(p)
  WHERE event = '{ORDER}'
)
SELECT profile_id, category, COUNT(*) AS n FROM c
WHERE category IS NOT NULL GROUP BY profile_id, category
"""


def cutoff_text(as_of: datetime | str) -> str:
    """A cutoff as ISO text in UTC (naive times are read as UTC); refuses unreadable input."""
    try:
        stamp = pd.Timestamp(as_of)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"cannot read the cutoff {as_of!r}",
            hint="give an ISO date or time, e.g. 2011-09-01 or 2011-09-01T00:00:00Z",
            problems=[Problem("as_of", str(exc))],
        ) from None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.isoformat()


def stamp_text(as_of: datetime | str) -> str:
    """A cutoff in the project's stored time format (UTC, microseconds, ``Z``)."""
    return iso(pd.Timestamp(cutoff_text(as_of)).to_pydatetime())


def check_source(source: str) -> None:
    """Source names are spliced into SQL, so only plain identifiers are accepted."""
    if not _IDENT.match(source):
        raise InvalidInput(
            f"invalid event source name {source!r}",
            hint="name a table or view, e.g. events",
            problems=[Problem("source", "must be a plain (optionally dotted) identifier")],
        )


def build_features(
    con: Any,
    source: str = "events",
    *,
    as_of: datetime | str,
    categories: int = 8,
    profile_ids: list[str] | None = None,
) -> pd.DataFrame:
    """One row per profile with an event before ``as_of``; columns are float features.

    Adds RFM quintile scores (``rfm_r``, ``rfm_f``, ``rfm_m``, 1 to 5 among buyers, 0 for
    non-buyers) and the share of category-tagged interactions in each of the ``categories``
    most common categories (``affinity_<category>``) when the events carry categories.
    ``profile_ids`` limits the build to those profiles (one profile on the decision path).
    """
    check_source(source)
    params: dict[str, Any] = {"cutoff": cutoff_text(as_of)}
    scope = _scope(profile_ids)
    if profile_ids is not None:
        params["ids"] = list(profile_ids)
    frame = con.execute(_query(source, scope), params).df().set_index("profile_id")
    frame = frame.astype(float)
    frame = add_rfm_scores(frame)
    if categories > 0:
        cats = con.execute(_category_query(source, scope), params).df()
        frame = frame.join(category_affinities(cats, categories), how="left")
    return frame


def add_rfm_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Quintile scores among buyers: 5 is the most recent, most frequent, highest spend."""
    out = frame.copy()
    buyers = out["frequency"] > 0
    for column, source, ascending in (
        ("rfm_r", "recency_days", False),
        ("rfm_f", "frequency", True),
        ("rfm_m", "monetary", True),
    ):
        ranks = out.loc[buyers, source].rank(method="average", pct=True, ascending=ascending)
        out[column] = 0.0
        out.loc[buyers, column] = np.ceil(ranks * 5).clip(1, 5)
    out["rfm_score"] = out["rfm_r"] + out["rfm_f"] + out["rfm_m"]
    return out


def category_affinities(counts: pd.DataFrame, top: int) -> pd.DataFrame:
    """Share of each profile's category-tagged interactions that fall in the top categories."""
    if counts.empty:
        return pd.DataFrame(index=pd.Index([], name="profile_id"))
    totals = counts.groupby("category")["n"].sum().sort_values(ascending=False, kind="stable")
    keep = list(totals.index[:top])
    table = counts.pivot_table(index="profile_id", columns="category", values="n", aggfunc="sum")
    table = table.fillna(0.0)
    shares = table[keep].div(table.sum(axis=1), axis=0)
    shares.columns = [f"affinity_{_slug(str(c))}" for c in keep]
    return shares.astype(float)


def purchase_labels(
    con: Any, source: str, profiles: pd.Index, *, cutoff: datetime | str, horizon_days: int
) -> pd.Series:
    """1 if the profile placed an order in ``[cutoff, cutoff + horizon)``, else 0.

    ``churn`` is the complement ("no order in the 90 days after the cutoff").
    """
    check_source(source)
    if horizon_days <= 0:
        raise InvalidInput(
            f"the label horizon must be positive, got {horizon_days}",
            hint="use a number of days such as 90",
            problems=[Problem("horizon_days", "must be > 0")],
        )
    start = cutoff_text(cutoff)
    query = f"""
    SELECT DISTINCT profile_id FROM {source}
    WHERE event = '{ORDER}' AND "timestamp" >= CAST($start AS TIMESTAMPTZ)
      AND "timestamp" < CAST($start AS TIMESTAMPTZ) + INTERVAL {int(horizon_days)} DAY
    """
    buyers = set(con.execute(query, {"start": start}).df()["profile_id"])
    return pd.Series([int(p in buyers) for p in profiles], index=profiles, name="label")


def describe_features() -> list[dict[str, str]]:
    """Name and meaning of every declared feature (for the CLI, API and docs)."""
    fixed = [{"name": f.name, "description": f.description} for f in FEATURES]
    windows = [{"name": f.name, "description": f.description} for f in window_features()]
    derived = [
        {"name": "rfm_r", "description": "recency quintile among buyers (5 = most recent)"},
        {"name": "rfm_f", "description": "frequency quintile among buyers"},
        {"name": "rfm_m", "description": "monetary quintile among buyers"},
        {"name": "rfm_score", "description": "rfm_r + rfm_f + rfm_m"},
        {"name": "affinity_<category>", "description": "share of interactions in a category"},
    ]
    return fixed + windows + derived
