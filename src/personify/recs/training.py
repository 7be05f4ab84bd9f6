"""Training the hybrid: tune its weights on the end of the training period, then refit.

The last ``validation_days`` of the training events are held out: sources are fitted on
what came before, weights are tuned to rank what users *bought* in the held-out days, and
the hybrid is then refitted on all training events with those weights. Nothing after the
training period is ever looked at, so an evaluation on a later test period stays honest.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from personify.errors import InvalidInput, Problem
from personify.recs.base import Recommender
from personify.recs.data import (
    Catalogue,
    Interactions,
    InteractionWeights,
    build_interactions,
    check_event_frame,
)
from personify.recs.hybrid import DEFAULT_WEIGHTS, Hybrid, Tuning, default_sources, tune_weights


def truth_matrix(
    data: Interactions, events: pd.DataFrame, kinds: Sequence[str] = ("purchase",)
) -> sp.csr_matrix:
    """Binary users x items matrix of ``events`` of these kinds, on ``data``'s id maps.

    Users and items the model does not know are dropped: it cannot rank them.
    """
    chosen = events[events["kind"].isin(list(kinds))]
    rows = chosen["user_id"].astype(str).map(data.user_index)
    cols = chosen["item_id"].astype(str).map(data.item_index)
    ok = rows.notna() & cols.notna()
    out = sp.csr_matrix(
        (np.ones(int(ok.sum())), (rows[ok].astype(int), cols[ok].astype(int))),
        shape=(data.n_users, data.n_items),
    )
    out.sum_duplicates()
    out.data = np.ones_like(out.data)
    return out


@dataclass
class TrainedHybrid:
    """A fitted hybrid, how its weights were found, and how long it took."""

    model: Hybrid
    tuning: Tuning | None
    fit_seconds: float


def train_hybrid(
    events: pd.DataFrame,
    *,
    catalogue: Catalogue | None = None,
    segments: Mapping[str, str] | None = None,
    weights: InteractionWeights | None = None,
    validation_days: float = 92.0,
    exclude_seen: bool = False,
    k: int = 10,
    sources: Mapping[str, Recommender] | None = None,
    items: Sequence[str] | None = None,
) -> TrainedHybrid:
    """Tune the hybrid's weights on a time split of ``events``, then fit it on all of them.

    With no purchases to validate on (a tiny or brand-new store) the default weights are
    used and ``tuning`` is ``None``.
    """
    if not validation_days > 0:
        raise InvalidInput(
            "validation_days must be > 0",
            hint="e.g. 92 (the last three months of the training period)",
            problems=[Problem("validation_days", "must be > 0")],
        )
    check_event_frame(events)
    started = time.perf_counter()
    stamps = pd.to_datetime(events["timestamp"], utc=True)
    cut = stamps.max() - pd.Timedelta(days=validation_days)
    early, late = events[stamps < cut], events[stamps >= cut]
    tuning = None
    make = _sources_factory(sources, catalogue)
    if not early.empty:
        sub = build_interactions(
            early, weights=weights, catalogue=catalogue, segments=segments, items=items
        )
        truth = truth_matrix(sub, late)
        if exclude_seen:
            truth = (truth - truth.multiply(sub.binary())).tocsr()
            truth.eliminate_zeros()
        if truth.nnz:
            probe = Hybrid(make(), starting_weights(make()))
            tuning = tune_weights(probe, sub, truth, k=k, exclude_seen=exclude_seen)
    full = build_interactions(
        events, weights=weights, catalogue=catalogue, segments=segments, items=items
    )
    final = make()
    chosen = tuning.weights if tuning is not None else starting_weights(final)
    model = Hybrid(final, chosen).fit(full)
    return TrainedHybrid(model, tuning, time.perf_counter() - started)


def _sources_factory(
    sources: Mapping[str, Recommender] | None, catalogue: Catalogue | None
) -> Callable[[], dict[str, Recommender]]:
    """Fresh, unfitted sources each call (tuning and the final fit must not share state)."""

    def make() -> dict[str, Recommender]:
        if sources is not None:
            return {name: clone(source) for name, source in sources.items()}
        return default_sources(with_content=catalogue is not None)

    return make


def clone(model: Recommender) -> Recommender:
    """An unfitted copy with the same parameters."""
    fresh = copy.copy(model)
    for name in [n for n in vars(fresh) if n.endswith("_")]:
        delattr(fresh, name)
    return copy.deepcopy(fresh)


def starting_weights(sources: Mapping[str, Recommender]) -> dict[str, float]:
    """The default weights for the sources present, or equal weights if none is known."""
    known = {n: w for n, w in DEFAULT_WEIGHTS.items() if n in sources}
    return known or dict.fromkeys(sources, 1.0)
