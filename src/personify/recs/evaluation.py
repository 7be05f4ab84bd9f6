"""The evaluation harness: every recommender on one time split, side by side.

:func:`run_reference` is the reference protocol on UCI Online Retail (its text,
:data:`PROTOCOL`, travels with every result); :func:`evaluate` is the harness itself and
works on any split.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from personify.errors import InvalidInput
from personify.recs.base import Recommender, check_k, top_k
from personify.recs.content import ContentBased
from personify.recs.data import Catalogue, Interactions, InteractionWeights, build_interactions
from personify.recs.factorization import ALS, BPR
from personify.recs.metrics import coverage, novelty, ranking_metrics
from personify.recs.neighbours import EASE, ItemKNN
from personify.recs.popularity import BuyAgainThenPopular, Popularity
from personify.recs.sources import (
    read_online_retail,
    retail_catalogue,
    retail_events,
    retail_segments,
)
from personify.recs.training import train_hybrid, truth_matrix

REFERENCE_CUTOFF = "2011-09-01"
VALIDATION_DAYS = 92.0
PROTOCOL = """\
Data: UCI Online Retail. Dropped: lines without CustomerID, cancellations (InvoiceNo 'C...'),
Quantity <= 0, UnitPrice <= 0. Interactions: binary customer x StockCode.
Split: train on lines before {cutoff} (UK local time), test on each customer's purchases from
{cutoff} on. Items: the stock codes bought in the training period; every model ranks all of
them (full ranking, no sampled negatives); test items never sold before the cutoff cannot be
ranked by any model and are not counted. Users: customers with purchases in both periods and
at least one such test item.
Models see the binary matrix; buy-again sources (and the 'buy again, then popular' rule,
which orders a customer's items by how many training invoices held them) also read order
counts and last purchase dates from the same training lines.
Variant 'repeat': repeat purchases allowed (a re-bought training item counts as a hit).
Variant 'new': the customer's training items are excluded from the ranking and the truth
(users with no new test item are dropped).
Metrics at k={k}: precision, recall, NDCG (binary gains 1/log2(rank+1)), MAP (divided by
min(relevant, k)), hit rate; coverage = share of items recommended to anyone; novelty = mean
-log2(share of training customers who bought the item).
Hybrid: weights tuned by coordinate ascent on NDCG@{k} with the last {val:g} days of the
training period held out (never the test period), then refitted on the whole training period;
tuned separately for each variant. Seeds: ALS/BPR random_state 42, BPR single-threaded.
"""


@dataclass
class Split:
    """A time split: training interactions and the test truth on the same id maps."""

    train_events: pd.DataFrame
    train: Interactions
    truth: sp.csr_matrix
    catalogue: Catalogue | None = None
    segments: dict[str, str] = field(default_factory=dict)


@dataclass
class ResultRow:
    """One recommender's figures in one variant."""

    model: str
    variant: str
    users: int
    metrics: dict[str, float]
    coverage: float
    novelty: float
    fit_s: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "variant": self.variant,
            "users": self.users,
            **{k: round(v, 4) for k, v in self.metrics.items()},
            "coverage": round(self.coverage, 4),
            "novelty": round(self.novelty, 3),
            "fit_s": round(self.fit_s, 2),
        }


@dataclass
class Report:
    """Everything one evaluation run measured, with its protocol."""

    protocol: str
    k: int
    rows: list[ResultRow]
    facts: dict[str, Any]
    hybrid_weights: dict[str, dict[str, float]]

    def ndcg(self, model: str, variant: str = "repeat") -> float:
        for row in self.rows:
            if row.model == model and row.variant == variant:
                return row.metrics["ndcg"]
        raise KeyError(f"{model} / {variant} was not evaluated")

    def as_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "k": self.k,
            "facts": self.facts,
            "hybrid_weights": self.hybrid_weights,
            "results": [r.as_dict() for r in self.rows],
        }


def time_split(
    events: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    *,
    catalogue_of: Callable[[pd.DataFrame], Catalogue] | None = None,
    segments: Mapping[str, str] | None = None,
) -> Split:
    """Binary training interactions before ``cutoff`` and the purchases from it on."""
    stamp = pd.Timestamp(cutoff)
    times = pd.to_datetime(events["timestamp"])
    if times.dt.tz is not None and stamp.tz is None:
        stamp = stamp.tz_localize("UTC")
    before, after = events[times < stamp], events[times >= stamp]
    if before.empty or after.empty:
        raise InvalidInput(
            f"the cutoff {cutoff} leaves an empty training or test period",
            hint=f"pick a date between {times.min()} and {times.max()}",
        )
    catalogue = catalogue_of(before) if catalogue_of is not None else None
    train = build_interactions(
        before,
        weights=InteractionWeights(binary=True),
        catalogue=catalogue,
        segments=segments,
        items=sorted(set(before["item_id"].astype(str))),
    )
    return Split(before, train, truth_matrix(train, after), catalogue, dict(segments or {}))


def baseline_models(with_content: bool = True) -> dict[str, Recommender]:
    """Every single recommender, with the parameters the reference reproduction used."""
    models: dict[str, Recommender] = {
        "popular": Popularity(),
        "popular_recent_30d": Popularity(window_days=30),
        "popular_in_country": Popularity(by_segment=True),
        "buy_again_popular": BuyAgainThenPopular(),
        "item_knn": ItemKNN(200, "cosine"),
        "item_cooccurrence": ItemKNN(200, "cooccurrence"),
        "ease": EASE(500.0),
        "als": ALS(factors=64, iterations=15, regularization=0.01),
        "bpr": BPR(factors=64, iterations=100),
    }
    if with_content:
        models["content"] = ContentBased()
    return models


def evaluate(
    models: Mapping[str, Recommender],
    split: Split,
    *,
    k: int = 10,
    exclude_seen: bool = False,
    fit_seconds: Mapping[str, float] | None = None,
    batch: int = 512,
) -> list[ResultRow]:
    """Rank every item for every test user with each model; fitted models are not refitted."""
    check_k(k)
    seen = split.train.binary()
    truth = split.truth
    if exclude_seen:
        truth = (truth - truth.multiply(seen)).tocsr()
        truth.eliminate_zeros()
    users = np.flatnonzero(np.diff(truth.tocsr().indptr) > 0)
    if len(users) == 0:
        raise InvalidInput("no test user has a rankable test item", hint="check the cutoff")
    item_users = np.asarray(seen.sum(axis=0)).ravel().astype(np.float64)
    rows = []
    for name, model in models.items():
        took = (fit_seconds or {}).get(name)
        if took is None:
            started = time.perf_counter()
            model.fit(split.train)
            took = time.perf_counter() - started
        tops = []
        for start in range(0, len(users), batch):
            chunk = users[start : start + batch]
            scores = model.score(split.train.query(chunk)).astype(np.float64)
            if exclude_seen:
                scores[seen[chunk].toarray() > 0] = -np.inf
            tops.append(top_k(scores, k))
        top = np.vstack(tops)
        rows.append(
            ResultRow(
                model=name,
                variant="new" if exclude_seen else "repeat",
                users=len(users),
                metrics=ranking_metrics(top, truth[users], k),
                coverage=coverage(top, split.train.n_items),
                novelty=novelty(top, item_users, split.train.n_users),
                fit_s=took,
            )
        )
    return rows


def run_reference(
    path: Path,
    *,
    cutoff: str = REFERENCE_CUTOFF,
    k: int = 10,
    variants: Sequence[str] = ("repeat", "new"),
    models: Sequence[str] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Report:
    """The reference protocol on the Online Retail file: every model, both variants."""
    unknown = [v for v in variants if v not in ("repeat", "new")]
    if unknown:
        raise InvalidInput(f"unknown variant(s) {unknown}", hint="use repeat and/or new")
    step = on_step or (lambda _: None)
    lines = read_online_retail(path)
    segments = retail_segments(lines)
    split = time_split(
        retail_events(lines),
        cutoff,
        catalogue_of=lambda before: retail_catalogue(
            lines[lines["invoice"].isin(set(before["order_id"]))]
        ),
        segments=segments,
    )
    chosen = baseline_models()
    if models is not None:
        missing = [m for m in models if m not in chosen and m != "hybrid"]
        if missing:
            raise InvalidInput(
                f"unknown model(s) {missing}", hint=f"choose from hybrid, {', '.join(chosen)}"
            )
        chosen = {n: m for n, m in chosen.items() if n in models}
    want_hybrid = models is None or "hybrid" in models
    fitted: dict[str, float] = {}
    for name, model in chosen.items():
        step(f"fitting {name}")
        started = time.perf_counter()
        model.fit(split.train)
        fitted[name] = time.perf_counter() - started
    rows: list[ResultRow] = []
    weights: dict[str, dict[str, float]] = {}
    facts: dict[str, Any] = {
        "lines": len(lines),
        "customers": int(lines["user_id"].nunique()),
        "stock_codes": int(lines["item_id"].nunique()),
        "train_customers": split.train.n_users,
        "train_items": split.train.n_items,
    }
    for variant in variants:
        exclude = variant == "new"
        everything = dict(chosen)
        seconds = dict(fitted)
        if want_hybrid:
            step(f"tuning and fitting the hybrid ({variant})")
            trained = train_hybrid(
                split.train_events,
                catalogue=split.catalogue,
                segments=segments,
                weights=InteractionWeights(binary=True),
                validation_days=VALIDATION_DAYS,
                exclude_seen=exclude,
                k=k,
                items=split.train.items.tolist(),
            )
            everything["hybrid"] = trained.model
            seconds["hybrid"] = trained.fit_seconds
            weights[variant] = dict(trained.model.weights)
            if trained.tuning is not None:
                facts[f"hybrid_validation_ndcg_{variant}"] = round(
                    trained.tuning.validation_ndcg, 4
                )
        step(f"ranking ({variant})")
        found = evaluate(everything, split, k=k, exclude_seen=exclude, fit_seconds=seconds)
        facts[f"test_users_{variant}"] = found[0].users
        rows.extend(found)
    protocol = PROTOCOL.format(cutoff=cutoff, k=k, val=VALIDATION_DAYS)
    return Report(protocol, k, rows, facts, weights)
