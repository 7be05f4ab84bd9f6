"""The one interface every recommender follows, and the ranking helpers they share.

A recommender is an estimator: ``__init__`` only stores parameters, ``fit(data)`` learns
and returns ``self``, learned state ends in ``_``. The one method a model must write is
``score(query)``: a dense (users x items) array where higher means "recommend sooner".
Everything else (``recommend`` for one user id, exclusions, ``similar_items``) is built
on it here, so every model ranks over all items the same way (no sampled negatives).

>>> import pandas as pd
>>> from personify.recs.data import build_interactions
>>> from personify.recs.popularity import Popularity
>>> events = pd.DataFrame({"user_id": ["u1", "u2", "u2"], "item_id": ["a", "a", "b"],
...     "kind": "purchase", "timestamp": pd.Timestamp("2024-01-01")})
>>> model = Popularity().fit(build_interactions(events))
>>> [r.item for r in model.recommend("u1", k=2)]
['a', 'b']
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from personify.errors import InvalidInput, NotFound, Problem
from personify.recs.data import Array, Interactions, Query


@dataclass(frozen=True)
class Scored:
    """One recommended item: its id, score and why it was chosen."""

    item: str
    score: float
    reason: str


class Recommender(ABC):
    """Base class: fit on :class:`Interactions`, score a :class:`Query` over every item."""

    reason = "recommended"
    # "row_max": scores only order items for one user, so a blend rescales them per user;
    # "absolute": scores mean the same for everyone (a probability-like propensity, a
    # popularity share) and are blended as they are.
    scale = "row_max"
    data_: Interactions

    def fit(self, data: Interactions) -> Self:
        """Learn from ``data`` and return ``self``."""
        if data.n_items == 0:
            raise InvalidInput(
                "no items to learn from",
                hint="the training events are empty or every item was filtered out",
            )
        self.data_ = data
        self._fit(data)
        return self

    def _fit(self, data: Interactions) -> None:  # noqa: B027 (optional hook, not abstract)
        """Model-specific learning (the default learns nothing beyond the data)."""

    @abstractmethod
    def score(self, query: Query) -> Array:
        """Scores (len(query) x n_items); higher is better, -inf never recommended."""

    def item_scores(self, item: int) -> Array | None:
        """Similarity of every item to column ``item``; ``None`` if the model has none."""
        return None

    # -- built on score() ----------------------------------------------------------------
    def query_for(self, user: str | None) -> Query:
        """A one-row query: the user's training history, or an empty one if unknown."""
        data = self._fitted()
        if user is not None and user in data.user_index:
            return data.query([data.user_index[user]])
        return empty_query(data.n_items)

    def recommend(
        self,
        user: str | None,
        k: int = 10,
        *,
        exclude: Iterable[str] = (),
        query: Query | None = None,
    ) -> list[Scored]:
        """The ``k`` best items for ``user`` (or for ``query`` if given), best first.

        ``k`` may exceed what a request may ask for (:func:`check_k`): serving asks for a
        larger pool when business rules drop candidates; it is cut to the catalogue.
        """
        check_pool(k)
        q = query if query is not None else self.query_for(user)
        raw, explain = self.score_explained(q)
        scores = raw[0].astype(np.float64)
        data = self._fitted()
        scores[data.item_rows(list(exclude))] = -np.inf
        top = top_k(scores[None, :], k)[0]
        top = top[np.isfinite(scores[top])]
        reasons = explain(top)
        return [
            Scored(str(data.items[i]), float(scores[i]), r)
            for i, r in zip(top.tolist(), reasons, strict=True)
        ]

    def reasons(self, query: Query, items: Array) -> list[str]:
        """Why each of ``items`` (columns) was recommended to the first query row."""
        return [self.reason] * len(items)

    def score_explained(self, query: Query) -> tuple[Array, Callable[[Array], list[str]]]:
        """Scores and a function giving the reasons for chosen columns (first row).

        Models whose reasons come from the same computation as the scores (the hybrid)
        override this to do the work once per request.
        """
        return self.score(query), lambda items: self.reasons(query, items)

    def similar_items(self, item: str, k: int = 10) -> list[Scored]:
        """The ``k`` items most like ``item`` (never the item itself; ``k`` as in
        :meth:`recommend`)."""
        check_pool(k)
        data = self._fitted()
        if item not in data.item_index:
            raise NotFound(
                f"unknown item {item!r}",
                hint="use an item id from the training events or the catalogue",
            )
        col = data.item_index[item]
        sims = self.item_scores(col)
        if sims is None:
            raise InvalidInput(
                f"{type(self).__name__} has no notion of item similarity",
                hint="use item-kNN, EASE, ALS, BPR, content or the hybrid for similar items",
            )
        sims = np.asarray(sims, dtype=np.float64).copy()
        sims[col] = -np.inf
        top = top_k(sims[None, :], k)[0]
        top = top[np.isfinite(sims[top]) & (sims[top] > 0)]
        return [Scored(str(data.items[i]), float(sims[i]), "similar") for i in top.tolist()]

    def _fitted(self) -> Interactions:
        data: Interactions | None = getattr(self, "data_", None)
        if data is None:
            raise InvalidInput(
                f"{type(self).__name__} is not fitted", hint="call fit(interactions) first"
            )
        return data


def check_k(k: int) -> None:
    if not 1 <= k <= 1000:
        raise InvalidInput(
            f"k must be between 1 and 1000, got {k}",
            hint="ask for a handful of items, e.g. k=10",
            problems=[Problem("k", "must be between 1 and 1000")],
        )


def check_pool(k: int) -> None:
    """A model's own ``k``: any positive count (the result stops at the catalogue's size)."""
    if k < 1:
        raise InvalidInput(
            f"k must be at least 1, got {k}",
            hint="ask for a handful of items, e.g. k=10",
            problems=[Problem("k", "must be at least 1")],
        )


def empty_query(n_items: int, rows: int = 1) -> Query:
    empty = sp.csr_matrix((rows, n_items), dtype=np.float32)
    return Query(
        users=np.full(rows, -1, dtype=np.int64),
        history=empty,
        purchases=empty.copy(),
        recency=empty.copy(),
        segments=[None] * rows,
        folded=np.zeros(rows, dtype=bool),
    )


def top_k(scores: Array, k: int) -> Array:
    """Column indices of the ``k`` highest scores per row, best first.

    Ties are broken by column index (lower first), so rankings are deterministic and the
    same for every model (popularity ties, items a model scores 0...).
    """
    n_rows, n = scores.shape
    k = min(k, n)
    if k == 0:
        return np.zeros((n_rows, 0), dtype=np.int64)
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(n), (n_rows, 1))
    vals = np.take_along_axis(scores, part, 1)
    out = np.take_along_axis(part, np.lexsort((part, -vals), axis=1), 1)
    if k < n:
        # argpartition cuts a tie at the k-th score arbitrarily: redo those rows exactly
        kth = vals.min(axis=1)
        tied = np.flatnonzero((scores >= kth[:, None]).sum(axis=1) > k)
        for row in tied.tolist():
            cand = np.flatnonzero(scores[row] >= kth[row])
            order = np.lexsort((cand, -scores[row, cand]))
            out[row] = cand[order[:k]]
    return out


def row_max_normalize(scores: Array) -> Array:
    """Scale each row to a maximum of 1 (rows of zeros stay zero; -inf is kept)."""
    finite = np.where(np.isfinite(scores), scores, 0.0)
    top = np.abs(finite).max(axis=1, keepdims=True)
    top[top == 0] = 1.0
    return np.asarray(scores / top)


def as_dense(matrix: Any) -> Array:
    """A dense ndarray from a sparse matrix or anything array-like."""
    if sp.issparse(matrix):
        return np.asarray(matrix.toarray())
    return np.asarray(matrix)
