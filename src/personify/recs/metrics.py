"""Top-k ranking metrics over full rankings, plus catalogue coverage and novelty.

``top`` is a (users x k) array of recommended columns, best first; ``truth`` a sparse
(users x items) matrix of what each user really did in the test period (non-zero =
relevant, relevance is binary). Every user must have at least one relevant item, since
recall, NDCG and MAP are undefined otherwise: the evaluation drops such users first.

* precision@k = hits / k; recall@k = hits / relevant
* NDCG@k = DCG / ideal DCG with gains 1 / log2(rank + 1), the ideal placing
  min(relevant, k) hits first
* MAP@k = mean over hits of precision at that hit's rank, divided by min(relevant, k)
* hit rate = share of users with at least one hit
* coverage = share of the catalogue recommended to anyone
* novelty = mean self-information -log2(share of training users who had the item)

>>> import numpy as np, scipy.sparse as sp
>>> truth = sp.csr_matrix(np.array([[1, 0, 1, 0]]))
>>> round(ranking_metrics(np.array([[0, 1]]), truth, 2)["ndcg"], 4)
0.6131
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from personify.errors import InvalidInput
from personify.recs.data import Array

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


def hits_matrix(top: Array, truth: sp.csr_matrix) -> Array:
    """1 where the recommended item at that rank is relevant."""
    rows = np.arange(top.shape[0])[:, None]
    return np.asarray(truth[rows, top].toarray() > 0, dtype=np.float64)


def per_user(top: Array, truth: sp.csr_matrix, k: int) -> dict[str, Array]:
    """Each metric for each user (row)."""
    if top.shape[0] != truth.shape[0]:
        raise InvalidInput("top and truth must have the same users (rows)")
    relevant = np.diff(truth.tocsr().indptr).astype(np.float64)
    if np.any(relevant == 0):
        raise InvalidInput(
            "some users have no relevant test item",
            hint="evaluate only users with at least one test interaction",
        )
    hits = hits_matrix(top[:, :k], truth)
    ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    gains = 1.0 / np.log2(ranks + 1.0)
    ideal_n = np.minimum(relevant, k).astype(np.int64)
    ideal = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))[ideal_n - 1]
    n_hits = hits.sum(axis=1)
    precision_at = np.cumsum(hits, axis=1) / ranks
    return {
        "precision": n_hits / k,
        "recall": n_hits / relevant,
        "ndcg": (hits * gains).sum(axis=1) / ideal,
        "map": (precision_at * hits).sum(axis=1) / ideal_n,
        "hit_rate": (n_hits > 0).astype(np.float64),
    }


def ranking_metrics(top: Array, truth: sp.csr_matrix, k: int) -> dict[str, float]:
    """Mean of each metric over users."""
    return {name: float(values.mean()) for name, values in per_user(top, truth, k).items()}


def coverage(top: Array, n_items: int) -> float:
    """Share of the ``n_items`` catalogue that appears in at least one list."""
    return float(len(np.unique(top)) / n_items) if n_items else 0.0


def novelty(top: Array, item_users: Array, n_users: int) -> float:
    """Mean -log2(popularity) of recommended items (higher: less obvious picks).

    ``item_users`` counts the training users of each item; an item no one had counts as
    one user, so its self-information is finite.
    """
    share = np.maximum(item_users[top], 1.0) / max(n_users, 1)
    return float(np.mean(-np.log2(share)))
