"""The hybrid: several recommenders' scores blended with tuned weights, with fallbacks.

Relative sources (collaborative and content scores, which only order items for one user)
are scaled per user to a maximum of 1; absolute ones (buy-again propensities, popularity
shares) are kept as they are, since "bought 5 times" or "bought yesterday" means the same
for everyone. The scores are then summed with one weight per source. Users with no history
(cold visitors) get the ``fallback`` (segment popularity by default). For a product page,
``similar_items`` blends the collaborative sources' item similarities with content
similarity, and uses content alone for items nobody has interacted with yet (cold items).

Weights are tuned by :func:`tune_weights` on a validation split cut from the end of the
*training* period (coordinate ascent on NDCG@k), never on the test period.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from personify.errors import InvalidInput, Problem
from personify.recs.base import Recommender, Scored, row_max_normalize, top_k
from personify.recs.content import ContentBased
from personify.recs.data import Array, Interactions, Query
from personify.recs.factorization import ALS
from personify.recs.metrics import ranking_metrics
from personify.recs.neighbours import EASE, ItemKNN
from personify.recs.popularity import BuyAgain, Popularity

DEFAULT_GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


def default_sources(with_content: bool = True) -> dict[str, Recommender]:
    """The candidate sources the hybrid blends by default (a content source needs a catalogue)."""
    sources: dict[str, Recommender] = {
        "bought_count": BuyAgain("count"),
        "bought_recency": BuyAgain("recency"),
        "repeat_rate": BuyAgain("repeat_rate"),
        "ease": EASE(500.0),
        "item_knn": ItemKNN(200),
        "als": ALS(factors=64, iterations=15),
        "popular": Popularity(),
        "popular_recent": Popularity(window_days=30),
    }
    if with_content:
        sources["content"] = ContentBased()
    return sources


DEFAULT_WEIGHTS = {"bought_count": 1.0, "ease": 0.5, "popular": 0.1}


class Hybrid(Recommender):
    """Weighted blend of named sources; ``fallback`` serves users with no history."""

    def __init__(
        self,
        sources: Mapping[str, Recommender] | None = None,
        weights: Mapping[str, float] | None = None,
        fallback: Recommender | None = None,
        content_weight_similar: float = 0.3,
    ) -> None:
        self.sources = dict(sources) if sources is not None else default_sources(False)
        self.weights = dict(weights) if weights is not None else dict(DEFAULT_WEIGHTS)
        self.fallback = fallback if fallback is not None else Popularity(by_segment=True)
        self.content_weight_similar = content_weight_similar

    def _fit(self, data: Interactions) -> None:
        self.check_weights(self.weights)
        for name, source in self.sources.items():
            if name in self.weights or isinstance(source, ContentBased):
                source.fit(data)
        self.fallback.fit(data)

    def check_weights(self, weights: Mapping[str, float]) -> None:
        """Raise :class:`InvalidInput` naming each weight that names no source or is < 0."""
        problems = [
            Problem(f"weights.{n}", f"no source named {n!r}; sources: {sorted(self.sources)}")
            for n in weights
            if n not in self.sources
        ]
        problems += [
            Problem(f"weights.{n}", "must be a finite number >= 0")
            for n, w in weights.items()
            if not (np.isfinite(w) and w >= 0)
        ]
        if not problems and not any(w > 0 for w in weights.values()):
            problems.append(Problem("weights", "at least one weight must be > 0"))
        if problems:
            raise InvalidInput(
                "invalid hybrid weights",
                hint="e.g. {'bought_count': 1, 'ease': 0.5}",
                problems=problems,
            )

    def source_scores(self, query: Query, names: Sequence[str] | None = None) -> dict[str, Array]:
        """Each active source's scores, scaled per user to a maximum of 1 where relative."""
        wanted = names if names is not None else [n for n, w in self.weights.items() if w > 0]
        out = {}
        for name in wanted:
            source = self.sources[name]
            scores = source.score(query)
            out[name] = row_max_normalize(scores) if source.scale == "row_max" else scores
        return out

    def score(self, query: Query) -> Array:
        return self.score_explained(query)[0]

    def score_explained(self, query: Query) -> tuple[Array, Callable[[Array], list[str]]]:
        total = np.zeros((len(query), self._fitted().n_items))
        cold = np.diff(query.history.indptr) == 0
        warm = np.flatnonzero(~cold)
        parts: dict[str, Array] = {}
        if len(warm):  # a lone new visitor (the common request) needs no source at all
            parts = self.source_scores(query if len(warm) == len(query) else _rows(query, warm))
            for name, scores in parts.items():
                total[warm] += self.weights[name] * scores
        if cold.any():
            rows = np.flatnonzero(cold)
            total[rows] = self.fallback.score(_rows(query, rows))

        def explain(items: Array) -> list[str]:
            if cold[0]:
                return self.fallback.reasons(query, items)
            return self._reasons(query, parts, items)  # row 0 is warm, so parts[.][0] is it

        return total, explain

    def reasons(self, query: Query, items: Array) -> list[str]:
        return self.score_explained(query)[1](items)

    def _reasons(self, query: Query, parts: Mapping[str, Array], items: Array) -> list[str]:
        names = list(parts)
        stacked = np.stack([self.weights[n] * parts[n][0, items] for n in names])
        strongest = [self.sources[names[i]].reason for i in stacked.argmax(axis=0).tolist()]
        # "bought before" is the explanation a shopper recognizes, whatever else agreed
        bought = query.purchases[0].toarray().ravel()[items] > 0
        return [
            "bought before" if b else r for b, r in zip(bought.tolist(), strongest, strict=True)
        ]

    def item_scores(self, item: int) -> Array | None:
        data = self._fitted()
        content = next((s for s in self.sources.values() if isinstance(s, ContentBased)), None)
        content_sims = content.item_scores(item) if content is not None else None
        if data.matrix[:, item].nnz == 0:
            return content_sims  # a cold item: only its description can place it
        total = np.zeros(data.n_items)
        for name, source in self.sources.items():
            if isinstance(source, ContentBased) or self.weights.get(name, 0) <= 0:
                continue
            sims = source.item_scores(item)
            if sims is not None:
                total += self.weights[name] * row_max_normalize(np.maximum(sims, 0)[None, :])[0]
        if content_sims is not None:
            total += self.content_weight_similar * total.max(initial=0) * content_sims
        return total if total.any() else content_sims

    def similar_items(self, item: str, k: int = 10) -> list[Scored]:
        found = super().similar_items(item, k)
        data = self._fitted()
        cold = data.matrix[:, data.item_index[item]].nnz == 0
        reason = "similar description" if cold else "bought together"
        return [Scored(s.item, s.score, reason) for s in found]


def _rows(query: Query, rows: Array) -> Query:
    return Query(
        users=query.users[rows],
        history=query.history[rows],
        purchases=query.purchases[rows],
        recency=query.recency[rows],
        segments=[query.segments[i] for i in rows.tolist()],
        folded=query.folded[rows],
    )


@dataclass(frozen=True)
class Tuning:
    """The outcome of weight tuning: weights, validation NDCG and how many users it used."""

    weights: dict[str, float]
    validation_ndcg: float
    validation_users: int
    steps: int


def tune_weights(
    hybrid: Hybrid,
    train: Interactions,
    truth: sp.csr_matrix,
    *,
    k: int = 10,
    grid: Sequence[float] = DEFAULT_GRID,
    rounds: int = 2,
    start: Mapping[str, float] | None = None,
    exclude_seen: bool = False,
    max_users: int = 1000,
    seed: int = 42,
) -> Tuning:
    """Coordinate ascent on validation NDCG@k over the weights of every source.

    ``train`` is the part of the training period before the validation cut; ``truth`` holds,
    for the same users and items, what they did after it. Sources are fitted once and
    their scores computed once; each step then only re-blends and re-ranks. With
    ``exclude_seen`` the items a user already had are never ranked (tune for discovery).
    At most ``max_users`` validation users are used (a sample drawn with ``seed``).
    """
    users = np.flatnonzero(np.diff(truth.tocsr().indptr) > 0)
    users = users[np.diff(train.matrix.indptr)[users] > 0]
    if len(users) > max_users:  # a fixed-seed sample keeps tuning fast and repeatable
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    if len(users) == 0:
        raise InvalidInput(
            "no validation users: nobody with a history bought anything after the cut",
            hint="use a longer history or a shorter validation window",
        )
    names = list(hybrid.sources)
    probe = Hybrid(hybrid.sources, dict.fromkeys(names, 1.0), hybrid.fallback)
    probe.fit(train)
    query = train.query(users)
    parts = {n: s.astype(np.float32) for n, s in probe.source_scores(query, names).items()}
    target = truth.tocsr()[users]
    seen = train.binary()[users].toarray() > 0 if exclude_seen else None
    initial = start if start is not None else hybrid.weights
    weights = {n: float(initial.get(n, 0.0)) for n in names}

    def evaluate(w: Mapping[str, float]) -> float:
        if not any(v > 0 for v in w.values()):
            return -1.0
        blend = np.zeros(target.shape, dtype=np.float32)
        for n in names:
            if w[n] > 0:
                blend += w[n] * parts[n]
        if seen is not None:
            blend[seen] = -np.inf
        return ranking_metrics(top_k(blend, k), target, k)["ndcg"]

    best = evaluate(weights)
    steps = 1
    for _ in range(rounds):
        improved = False
        for name in names:
            for value in grid:
                trial = {**weights, name: float(value)}
                score = evaluate(trial)
                steps += 1
                if score > best + 1e-9:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    return Tuning({n: w for n, w in weights.items() if w > 0}, best, len(users), steps)
