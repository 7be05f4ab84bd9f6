"""The artefact a scoring model is stored as, and scoring profiles with it.

A :class:`ServedModel` bundles the fitted classifier with the feature columns it expects,
what its score means (``target``), and a sample of its training features and scores, which
drift monitoring compares the latest scoring against. Batch scoring writes every profile's
score to a :class:`~personify.storage.ports.ScoreStore` (``scores.<name>`` in conditions);
:func:`score_one` answers the decision path for a single profile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from personify.errors import NotFound
from personify.models.drift import drift_report
from personify.models.features import build_features, stamp_text
from personify.models.supervised import CustomerClassifier
from personify.storage.ports import ScoreStore

# RFM quintiles are ranks within the scored population, so a model must not depend on them
# (a single profile scored on request has no population); recency, frequency and monetary
# carry the same information for trees and stay in.
NOT_MODEL_INPUTS = ("rfm_r", "rfm_f", "rfm_m", "rfm_score")
ConsentCheck = Callable[[Iterable[str]], set[str]]
# ids -> those erased since the scoring run began (``ModelService.live_source``)
ErasureCheck = Callable[[Iterable[str]], set[str]]
REFERENCE_ROWS = 5_000


@dataclass
class ServedModel:
    """A fitted classifier plus what scoring and monitoring need to use it."""

    estimator: CustomerClassifier
    features: list[str]
    target: str
    horizon_days: int | None = None
    reference: pd.DataFrame = field(default_factory=pd.DataFrame)

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        """P(target) for each row; columns the model knows but the frame lacks count as 0."""
        return np.asarray(self.estimator.predict_proba(self.inputs(frame))[:, 1], dtype=float)

    def inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.reindex(columns=self.features)
        # Category shares absent from this batch mean "no interactions there".
        shares = [c for c in self.features if c.startswith("affinity_")]
        out[shares] = out[shares].fillna(0.0)
        return out


def model_inputs(frame: pd.DataFrame) -> list[str]:
    """The feature columns a model is trained on (everything but population-relative ranks)."""
    return [c for c in frame.columns if c not in NOT_MODEL_INPUTS]


def reference_sample(
    frame: pd.DataFrame, scores: np.ndarray[Any, Any], seed: int = 0
) -> pd.DataFrame:
    """Up to 5,000 training rows with their scores, kept for drift checks."""
    sample = frame.copy()
    sample["score"] = scores
    if len(sample) > REFERENCE_ROWS:
        sample = sample.sample(REFERENCE_ROWS, random_state=seed)
    return sample.reset_index(drop=True)


def score_all(
    model: ServedModel,
    con: Any,
    source: str,
    store: ScoreStore,
    *,
    name: str,
    version: int,
    as_of: str,
    consent: ConsentCheck | None = None,
    erased: ErasureCheck | None = None,
) -> dict[str, Any]:
    """Score every profile with events before ``as_of`` and write the scores to ``store``.

    ``consent`` receives the profile ids and returns those that may be scored (profiling
    consent, issue 6); profiles it leaves out are not scored and any old score of theirs is
    removed. ``erased`` (ids -> those erased since the run began) lets profiles erased while
    this ran keep no score (:func:`drop_erased`). Returns counts and a drift report against
    the training reference.
    """
    frame = build_features(con, source, as_of=as_of)
    allowed = set(frame.index) if consent is None else set(consent(list(frame.index)))
    refused = [pid for pid in frame.index if pid not in allowed]
    frame = frame.loc[[pid for pid in frame.index if pid in allowed]]
    scores = model.predict(frame) if len(frame) else np.zeros(0)
    at = stamp_text(as_of)
    store.put(name, version, dict(zip(frame.index, scores.tolist(), strict=True)), at=at)
    if refused:
        store.delete_profiles(refused)
    dropped = drop_erased(store, list(frame.index), erased)
    current = model.inputs(frame)
    current["score"] = scores
    drift = drift_report(model.reference, current) if len(model.reference) and len(frame) else None
    return {
        "scored": len(frame) - dropped,
        "skipped_without_consent": len(refused),
        "drift": drift,
    }


def drop_erased(store: ScoreStore, scored: list[str], erased: ErasureCheck | None) -> int:
    """Remove again the scores just written for profiles erased meanwhile; how many.

    A scoring run reads the events long before it writes the scores, and an erasure may run
    in between: it deletes the person's profiles, then their scores, and would miss a score
    written after that. ``erased`` (ids -> those the profile store held when the run began
    and holds no longer) is asked after the write, so whichever order the two take, one of
    them removes the score. A profile that had no document when the run began (one processing
    has not stored yet, or an event store without profiles) is never dropped. (The event
    store cannot answer this: an erasure compacts it, which closes the connection a run
    reads from.) Without ``erased`` nothing is checked.
    """
    if erased is None or not scored:
        return 0
    gone = erased(scored)
    if gone:
        store.delete_profiles(gone)
    return len(gone)


def score_one(
    model: ServedModel, con: Any, source: str, profile_id: str, *, as_of: str, top: int = 5
) -> dict[str, Any]:
    """One profile's score now, with the features that moved it most (decision path)."""
    frame = build_features(con, source, as_of=as_of, profile_ids=[profile_id], categories=1000)
    if profile_id not in frame.index:
        raise NotFound(
            f"profile {profile_id!r} has no events before {as_of}",
            hint="score a profile that has events, or check the profile id",
        )
    row = frame.loc[[profile_id]]
    inputs = model.inputs(row)
    return {
        "profile_id": profile_id,
        "value": float(model.predict(row)[0]),
        "target": model.target,
        "top_contributions": model.estimator.top_contributions(inputs, k=top)[0],
    }


def score_events(
    model: ServedModel,
    rows: list[dict[str, Any]],
    profile_id: str,
    *,
    as_of: str,
    top: int = 5,
) -> dict[str, Any]:
    """Score one profile from its event rows (``EventStore.timeline``), as the API does.

    Works on any ``EventStore`` adapter, including the server's remote one, because it needs
    only the profile's own rows: they are loaded into an in-memory DuckDB and run through the
    same feature SQL as batch scoring. Rows of merged-away profiles count as the survivor's.
    """
    from personify.models.sources import connect, register_frame

    frame = pd.DataFrame(
        {
            "profile_id": profile_id,
            "type": [r.get("type") for r in rows],
            "event": [r.get("event") for r in rows],
            "timestamp": pd.to_datetime([str(r["timestamp"]) for r in rows], utc=True),
            "session_id": [r.get("session_id") for r in rows],
            "payload": [r.get("payload") or "{}" for r in rows],
        }
    )
    con = connect()
    try:
        register_frame(con, frame)
        return score_one(model, con, "events", profile_id, as_of=as_of, top=top)
    finally:
        con.close()
