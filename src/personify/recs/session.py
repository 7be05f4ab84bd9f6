"""Session awareness without retraining: fold a visitor's newest events into a query.

A model is fitted on events up to its training window. At request time the profile's
timeline events newer than that window (this session's views, add-to-carts and orders) are
read with :func:`recent_events` and added to the user's training row by :func:`fold_in`,
so "three product views in this session" already changes what is recommended. The
factorization models see the row flagged ``folded`` and recompute the user's vector.

>>> from personify.recs.data import InteractionWeights, build_interactions
>>> import pandas as pd
>>> data = build_interactions(pd.DataFrame({"user_id": ["u"], "item_id": ["a"],
...     "kind": "purchase", "timestamp": pd.Timestamp("2024-01-01")}), items=["a", "b"])
>>> fold_in(data, -1, [("b", "view", "m1")], InteractionWeights()).history.toarray().tolist()
[[0.0, 1.0]]
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import numpy as np
import scipy.sparse as sp

from personify.recs.base import empty_query
from personify.recs.data import Array, Interactions, InteractionWeights, Query
from personify.recs.sources import product_event_tuples


def recent_events(rows: list[dict[str, Any]], since: str) -> list[tuple[str, str, str]]:
    """``(item, kind, order)`` of timeline rows newer than ``since`` (ISO UTC)."""
    cut = utc(since)
    return [
        (item, kind, order)
        for _, item, kind, stamp, order in product_event_tuples(rows)
        if utc(stamp) > cut
    ]


def utc(text: str) -> datetime:
    stamp = datetime.fromisoformat(text)
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def fold_in(
    data: Interactions,
    row: int,
    recent: Sequence[tuple[str, str, str]],
    weights: InteractionWeights,
    segment: str | None = None,
) -> Query:
    """A one-row query: the training history of ``row`` (-1: none) plus ``recent`` events.

    ``recent`` holds ``(item, kind, order)``. Recent events are weighted like training
    events (without decay: they are minutes old); a recent purchase also counts as an
    order and makes the item "bought today". Items the model does not know are skipped.
    """
    query = data.query([row]) if row >= 0 else empty_query(data.n_items)
    query.segments = [segment]
    index = data.item_index
    known = [(index[item], kind, order) for item, kind, order in recent if item in index]
    if not known:
        return query
    history = query.history.toarray().ravel().astype(np.float64)
    purchases = query.purchases.toarray().ravel().astype(np.float64)
    recency = query.recency.toarray().ravel().astype(np.float64)
    orders: set[tuple[int, str]] = set()
    for col, kind, order in known:
        history[col] = 1.0 if weights.binary else history[col] + weights.of(kind)
        recency[col] = 1.0
        if kind == "purchase" and (col, order) not in orders:
            orders.add((col, order))
            purchases[col] += 1.0
    return Query(
        users=query.users,
        history=_row(history),
        purchases=_row(purchases),
        recency=_row(recency),
        segments=[segment],
        folded=np.array([True]),
    )


def _row(values: Array) -> sp.csr_matrix:
    return sp.csr_matrix(values.reshape(1, -1), dtype=np.float32)


K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
