"""Matrix factorization for implicit feedback, fitted by the ``implicit`` package.

ALS (Hu, Koren & Volinsky 2008) weighs observed interactions by confidence
``1 + alpha * weight``; BPR (Rendle et al. 2009) learns to rank an interacted item above a
sampled one. Both give user and item vectors whose dot product is the score.

``implicit`` warns (and runs far slower) when OpenBLAS uses its own thread pool under
implicit's threads, so every model is built and fitted inside ``threadpool_limits(1, "blas")``.

Users the model was not fitted on, or whose history gained events since (session fold-in),
get a fresh vector: ALS solves its least-squares step for them exactly
(``recalculate_user``); BPR, which has no such step, uses the weighted mean of the vectors
of their items, an approximation that keeps "related to what you just viewed" working.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from personify.errors import InvalidInput, Problem
from personify.recs.base import Recommender
from personify.recs.data import Array, Interactions, Query


def default_threads() -> int:
    """Use the cores there are, at most 4 (more rarely helps at this size)."""
    return max(1, min(4, os.cpu_count() or 1))


class _Factorization(Recommender):
    reason = "matches your taste"
    model_: Any
    user_factors_: Array
    item_factors_: Array

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        iterations: int = 15,
        seed: int = 42,
        threads: int | None = None,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.seed = seed
        self.threads = threads

    def _check(self) -> None:
        problems = []
        if self.factors < 1:
            problems.append(Problem("factors", "must be >= 1"))
        if self.iterations < 1:
            problems.append(Problem("iterations", "must be >= 1"))
        if self.regularization < 0:
            problems.append(Problem("regularization", "must be >= 0"))
        if problems:
            raise InvalidInput(
                f"invalid {type(self).__name__} parameters",
                hint="e.g. factors=64, iterations=15, regularization=0.01",
                problems=problems,
            )

    def _train_matrix(self, data: Interactions) -> sp.csr_matrix:
        return data.matrix.astype(np.float32).tocsr()

    def _fit(self, data: Interactions) -> None:
        self._check()
        with threadpool_limits(1, "blas"):  # implicit checks the BLAS threads when built
            self.model_ = self._make()
            self.model_.fit(self._train_matrix(data), show_progress=False)
        self.user_factors_ = np.asarray(self.model_.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(self.model_.item_factors, dtype=np.float32)

    @abstractmethod
    def _make(self) -> Any:
        """A new, unfitted ``implicit`` model with this recommender's parameters."""

    @abstractmethod
    def _fresh_vectors(self, history: sp.csr_matrix) -> Array:
        """User vectors for interaction rows the model was not trained on (fold-in)."""

    def _user_vectors(self, query: Query) -> Array:
        out = np.zeros((len(query), self.user_factors_.shape[1]), dtype=np.float32)
        known = (query.users >= 0) & ~query.folded
        out[known] = self.user_factors_[query.users[known]]
        fresh = np.flatnonzero(~known)
        if len(fresh):
            history = query.history[fresh].astype(np.float32).tocsr()
            out[fresh] = self._fresh_vectors(history)
        return out

    def score(self, query: Query) -> Array:
        scores = self._user_vectors(query) @ self.item_factors_.T
        empty = np.diff(query.history.indptr) == 0
        scores[empty] = 0.0  # nothing known: no taste to match
        return np.asarray(scores, dtype=np.float64)

    def item_scores(self, item: int) -> Array | None:
        vectors = self.item_factors_
        norms = np.linalg.norm(vectors, axis=1)
        norms[norms == 0] = 1.0
        return np.asarray((vectors @ vectors[item]) / (norms * norms[item]), dtype=np.float64)


class ALS(_Factorization):
    """Alternating least squares on confidence-weighted implicit feedback."""

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        iterations: int = 15,
        alpha: float = 1.0,
        seed: int = 42,
        threads: int | None = None,
    ) -> None:
        super().__init__(factors, regularization, iterations, seed, threads)
        self.alpha = alpha

    def _make(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]

        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.seed,
            num_threads=self.threads or default_threads(),
        )

    def _fresh_vectors(self, history: sp.csr_matrix) -> Array:
        rows = np.arange(history.shape[0])
        with threadpool_limits(1, "blas"):
            vectors = self.model_.recalculate_user(rows, history)
        return np.asarray(vectors, dtype=np.float32).reshape(len(rows), -1)


class BPR(_Factorization):
    """Bayesian personalized ranking, trained by SGD on (user, bought, not bought) triples."""

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        iterations: int = 100,
        learning_rate: float = 0.05,
        seed: int = 42,
        threads: int | None = None,
    ) -> None:
        super().__init__(factors, regularization, iterations, seed, threads)
        self.learning_rate = learning_rate

    def _make(self) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking  # type: ignore[import-untyped]

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.seed,
            # SGD over shared vectors in several threads is not reproducible: one by default
            num_threads=self.threads or 1,
        )

    def _train_matrix(self, data: Interactions) -> sp.csr_matrix:
        return data.binary().astype(np.float32).tocsr()

    def _fresh_vectors(self, history: sp.csr_matrix) -> Array:
        # implicit's BPR keeps the item bias as the last item column and a constant 1 as the
        # last user column; average the taste part and keep the constant.
        weights = history.multiply(1.0 / np.maximum(history.sum(axis=1), 1e-9)).tocsr()
        taste = np.asarray(weights @ self.item_factors_[:, :-1])
        return np.hstack([taste, np.ones((taste.shape[0], 1), dtype=np.float32)])
