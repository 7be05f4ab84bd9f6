"""Non-personal and repeat-purchase baselines: popularity and "buy again".

They are baselines in evaluation and, inside the hybrid, the fallback for cold visitors
(segment popularity) and the strongest signal for consumables (buy again).

>>> import pandas as pd
>>> from personify.recs.data import build_interactions
>>> ev = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "b"],
...     "kind": "purchase", "timestamp": pd.Timestamp("2024-01-01"), "order_id": ["1", "2", "3"]})
>>> [r.item for r in BuyAgainThenPopular().fit(build_interactions(ev)).recommend("u2", 2)]
['b', 'a']
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from personify.errors import InvalidInput, Problem
from personify.recs.base import Recommender, as_dense
from personify.recs.data import Array, Interactions, Query


class Popularity(Recommender):
    """Items ranked by how many users interacted with them.

    ``window_days`` counts only users whose latest event on the item is that recent
    (trends, seasonality). ``by_segment`` ranks within the user's segment (country,
    lifecycle stage...) when the segment has at least ``min_segment_users`` users, and
    globally otherwise; global popularity breaks ties.
    """

    reason = "popular"
    scale = "absolute"

    def __init__(
        self,
        window_days: float | None = None,
        by_segment: bool = False,
        min_segment_users: int = 20,
    ) -> None:
        self.window_days = window_days
        self.by_segment = by_segment
        self.min_segment_users = min_segment_users

    def _fit(self, data: Interactions) -> None:
        if self.window_days is not None and not self.window_days > 0:
            raise InvalidInput(
                "window_days must be > 0",
                hint="e.g. 30 for the last month",
                problems=[Problem("window_days", "must be > 0")],
            )
        seen = data.recency.copy()
        if self.window_days is not None:
            seen.data = (seen.data <= self.window_days + 1).astype(np.float32)
        else:
            seen.data = np.ones_like(seen.data)
        seen.eliminate_zeros()
        counts = np.asarray(seen.sum(axis=0)).ravel().astype(np.float64)
        total = np.asarray(data.binary().sum(axis=0)).ravel().astype(np.float64)
        # all-time popularity breaks ties (and orders items no one bought in the window)
        self.global_ = _unit(counts + _unit(total) * 0.5)
        self.by_segment_ = {}
        if self.by_segment:
            segs = data.segments
            for name in sorted({s for s in segs.tolist() if s is not None}):
                rows = np.flatnonzero(segs == name)
                if len(rows) >= self.min_segment_users:
                    seg_counts = np.asarray(seen[rows].sum(axis=0)).ravel()
                    self.by_segment_[name] = _unit(seg_counts + self.global_ * 0.5)

    global_: Array
    by_segment_: dict[str, Array]

    def score(self, query: Query) -> Array:
        out = np.tile(self.global_, (len(query), 1))
        for row, segment in enumerate(query.segments):
            if segment is not None and segment in self.by_segment_:
                out[row] = self.by_segment_[segment]
        return out

    def reasons(self, query: Query, items: Array) -> list[str]:
        segment = query.segments[0] if query.segments else None
        if segment is not None and segment in getattr(self, "by_segment_", {}):
            return [f"popular in {segment}"] * len(items)
        return ["popular recently" if self.window_days else "popular"] * len(items)


Signal = Literal["count", "recency", "repeat_rate"]


class BuyAgain(Recommender):
    """Repeat-purchase propensity over the items a user already bought (0 elsewhere).

    ``signal`` is what orders them: ``count`` (log of how many orders held the item),
    ``recency`` (1 / days since the user last touched it) or ``repeat_rate`` (share of the
    item's buyers who bought it in two or more orders, smoothed: consumables score high).
    """

    reason = "bought before"
    scale = "absolute"

    def __init__(self, signal: Signal = "count", prior_buyers: float = 10.0) -> None:
        self.signal = signal
        self.prior_buyers = prior_buyers

    def _fit(self, data: Interactions) -> None:
        if self.signal not in ("count", "recency", "repeat_rate"):
            raise InvalidInput(
                f"unknown buy-again signal {self.signal!r}",
                hint="use count, recency or repeat_rate",
                problems=[Problem("signal", "must be count, recency or repeat_rate")],
            )
        bought = data.purchases
        buyers = np.asarray((bought > 0).sum(axis=0)).ravel().astype(np.float64)
        repeaters = np.asarray((bought > 1).sum(axis=0)).ravel().astype(np.float64)
        overall = repeaters.sum() / max(buyers.sum(), 1.0)
        self.repeat_rate_ = (repeaters + self.prior_buyers * overall) / (buyers + self.prior_buyers)

    repeat_rate_: Array

    def score(self, query: Query) -> Array:
        bought = as_dense(query.purchases).astype(np.float64)
        if self.signal == "count":
            return np.log1p(bought)
        if self.signal == "repeat_rate":
            return (bought > 0) * self.repeat_rate_[None, :]
        days = as_dense(query.recency).astype(np.float64)
        return np.where((bought > 0) & (days > 0), 1.0 / np.maximum(days, 1.0), 0.0)


class BuyAgainThenPopular(Recommender):
    """The rule to beat: items bought before (most orders first), then the most popular.

    Among bought items with equal counts, and among the rest, all-time popularity decides.
    """

    def _fit(self, data: Interactions) -> None:
        self.popular_ = Popularity().fit(data)

    popular_: Popularity

    def score(self, query: Query) -> Array:
        bought = as_dense(query.purchases).astype(np.float64)
        # popularity is in [0, 1], so one extra order always outranks any popularity gap
        return bought * 2.0 + self.popular_.score(query)

    def reasons(self, query: Query, items: Array) -> list[str]:
        bought = as_dense(query.purchases[0]).ravel()
        return ["bought before" if bought[i] > 0 else "popular" for i in items.tolist()]


def _unit(values: Array) -> Array:
    top = float(values.max()) if len(values) else 0.0
    return values / top if top > 0 else values.astype(np.float64)
