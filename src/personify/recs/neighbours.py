"""Item-item collaborative filtering: neighbours (kNN) and EASE.

Both learn an item x item matrix ``W`` from who interacted with what and score a user as
``history @ W``: "customers who bought this also bought". They differ in how ``W`` is
found: kNN keeps the ``neighbours`` most similar items per item (cosine or raw
co-occurrence); EASE (Steck, 2019) solves a ridge regression of every item on all the
others in closed form, ``B = I - P / diag(P)`` with ``P = (X'X + l2 I)^-1``.

>>> import pandas as pd
>>> from personify.recs.data import build_interactions
>>> ev = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2", "u3"],
...     "item_id": ["a", "b", "a", "b", "a"], "kind": "purchase",
...     "timestamp": pd.Timestamp("2024-01-01")})
>>> [r.item for r in ItemKNN().fit(build_interactions(ev)).recommend("u3", 1)]
['b']
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

from personify.errors import InvalidInput, Problem
from personify.recs.base import Recommender, as_dense
from personify.recs.data import Array, Interactions, Query

MAX_EASE_ITEMS = 25_000  # a dense items x items float32 inverse: 2.5 GB at this size
_BLOCK = 2048


class ItemKNN(Recommender):
    """Item neighbours by cosine similarity or co-occurrence counts of the binary matrix."""

    reason = "bought or viewed together"

    def __init__(
        self,
        neighbours: int = 200,
        similarity: Literal["cosine", "cooccurrence"] = "cosine",
    ) -> None:
        self.neighbours = neighbours
        self.similarity = similarity

    def _fit(self, data: Interactions) -> None:
        problems = []
        if self.neighbours < 1:
            problems.append(Problem("neighbours", "must be >= 1"))
        if self.similarity not in ("cosine", "cooccurrence"):
            problems.append(Problem("similarity", "must be cosine or cooccurrence"))
        if problems:
            raise InvalidInput(
                "invalid item-kNN parameters", hint="e.g. ItemKNN(200)", problems=problems
            )
        x = data.binary().astype(np.float64).tocsc()
        gram = (x.T @ x).tocsc()
        if self.similarity == "cosine":
            norms = np.sqrt(gram.diagonal())
            norms[norms == 0] = 1.0
            inv = sp.diags(1.0 / norms)
            gram = (inv @ gram @ inv).tocsc()
        self.similarity_ = _prune_columns(gram, self.neighbours)

    similarity_: sp.csr_matrix

    def score(self, query: Query) -> Array:
        history = query.history.astype(np.float32)
        history.data = np.ones_like(history.data)
        return as_dense(history @ self.similarity_)

    def item_scores(self, item: int) -> Array | None:
        # column j holds the neighbours kept for j; row i of the symmetric Gram is close
        return as_dense(self.similarity_[:, item]).ravel()


def _prune_columns(gram: sp.csc_matrix, keep: int) -> sp.csr_matrix:
    """Keep the ``keep`` largest entries of each column, without the diagonal."""
    n = gram.shape[0]
    parts = []
    for start in range(0, n, _BLOCK):
        block = np.asarray(gram[:, start : start + _BLOCK].toarray(), dtype=np.float32)
        cols = np.arange(block.shape[1])
        block[start + cols, cols] = 0.0
        if keep < n:
            drop = np.argpartition(-block, keep, axis=0)[keep:]
            np.put_along_axis(block, drop, 0.0, axis=0)
        parts.append(sp.csc_matrix(block))
    return sp.hstack(parts).tocsr() if parts else sp.csr_matrix((n, n), dtype=np.float32)


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder: closed-form item-item ridge regression."""

    reason = "often bought with your items"

    def __init__(self, l2: float = 500.0) -> None:
        self.l2 = l2

    def _fit(self, data: Interactions) -> None:
        if not self.l2 > 0:
            raise InvalidInput(
                "EASE needs l2 > 0", hint="e.g. EASE(l2=500)", problems=[Problem("l2", "> 0")]
            )
        if data.n_items > MAX_EASE_ITEMS:
            raise InvalidInput(
                f"EASE inverts a dense {data.n_items} x {data.n_items} matrix; the limit is "
                f"{MAX_EASE_ITEMS} items",
                hint="use item-kNN or ALS for catalogues this large",
            )
        x = data.binary().astype(np.float64)
        gram = np.asarray((x.T @ x).toarray())
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)  # LAPACK's blocked inverse beat a Cholesky route here
        b = p / (-np.diag(p))
        np.fill_diagonal(b, 0.0)
        self.weights_ = b.astype(np.float32)

    weights_: Array

    def score(self, query: Query) -> Array:
        history = query.history.astype(np.float32)
        history.data = np.ones_like(history.data)
        return np.asarray(history @ self.weights_)

    def item_scores(self, item: int) -> Array | None:
        return np.asarray(self.weights_[item], dtype=np.float64)
