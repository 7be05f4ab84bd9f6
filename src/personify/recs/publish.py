"""Train the serving hybrid from a source and store it in the model registry.

Two sources: the engine's own event store (Segment product events; users are profiles)
and the UCI Online Retail file (users are CustomerIDs, which the importer also sends as
``userId``, so an imported customer's profile finds its row). The registered artefact is
a :class:`~personify.recs.serving.RecsBundle`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from personify.errors import InvalidInput
from personify.recs.data import Catalogue, InteractionWeights
from personify.recs.rules import BusinessRules
from personify.recs.serving import MODEL_KIND, MODEL_NAME, RecsBundle
from personify.recs.sources import (
    follow_merges,
    product_events,
    read_event_store,
    read_online_retail,
    retail_catalogue,
    retail_events,
    retail_segments,
)
from personify.recs.training import TrainedHybrid, train_hybrid

if TYPE_CHECKING:
    from personify.models.registry import ModelRegistry, ModelVersion
    from personify.storage.ports import ProfileStore


@dataclass
class TrainingInput:
    """Events, catalogue and segments from one source, and what to call that source."""

    events: pd.DataFrame
    catalogue: Catalogue | None
    segments: dict[str, str]
    source: str
    weights: InteractionWeights
    segment_trait: str | None


def from_online_retail(path: Path) -> TrainingInput:
    lines = read_online_retail(path)
    return TrainingInput(
        events=retail_events(lines),
        catalogue=retail_catalogue(lines),
        segments=retail_segments(lines),
        source=f"online-retail:{path.name}",
        weights=InteractionWeights(binary=True),
        segment_trait="country",
    )


def from_event_store(
    path: Path,
    profiles: ProfileStore | None = None,
    weights: InteractionWeights | None = None,
) -> TrainingInput:
    """Training input from an ``events.duckdb`` file that no server holds open."""
    return from_rows(read_event_store(path), profiles, weights)


def from_rows(
    rows: Iterable[Mapping[str, Any]],
    profiles: ProfileStore | None = None,
    weights: InteractionWeights | None = None,
    segment_trait: str | None = "country",
) -> TrainingInput:
    """Training input from event-store rows.

    Views, add-to-carts and orders are weighted 1 / 4 / 10 and halve every 90 days by
    default; the catalogue is what the events said about each product (name, category,
    price). With the profile store, events of merged-away profiles go to their survivor
    and each profile's ``segment_trait`` (its country by default) is its segment.
    """
    frame, items = product_events(rows)
    if frame.empty:
        raise InvalidInput(
            "the event store has no product events to learn from",
            hint="send Product Viewed, Product Added or Order Completed events (with "
            "product_id or sku), or train from a file with --online-retail",
        )
    segments: dict[str, str] = {}
    if profiles is not None:
        docs = _live_profiles(profiles, sorted(set(frame["user_id"])))
        frame = follow_merges(
            frame, lambda ids: {i: docs[i]["profile_id"] for i in ids if i in docs}
        )
        if segment_trait is not None:
            segments = _trait_values(docs.values(), segment_trait)
    catalogue = Catalogue.from_frame(items) if not items.empty else None
    return TrainingInput(
        events=frame,
        catalogue=catalogue,
        segments=segments,
        source="event-store",
        weights=weights or InteractionWeights(half_life_days=90.0),
        segment_trait=segment_trait,
    )


def _live_profiles(profiles: ProfileStore, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The surviving profile document for each id (merges followed, at most 64 steps)."""
    docs = profiles.get_many(ids)
    out = {}
    for pid in ids:
        doc, steps = docs.get(pid), 0
        while doc is not None and doc.get("merged_into") and steps < 64:
            target = str(doc["merged_into"])
            doc = docs.get(target) or profiles.get_many([target]).get(target)
            steps += 1
        if doc is not None:
            out[pid] = doc
    return out


def _trait_values(docs: Iterable[Mapping[str, Any]], trait: str) -> dict[str, str]:
    out = {}
    for doc in docs:
        value = doc.get("traits", {}).get(trait)
        if isinstance(value, Mapping) and value.get("value") is not None:
            out[str(doc["profile_id"])] = str(value["value"])
    return out


def train(data: TrainingInput, *, validation_days: float = 92.0, k: int = 10) -> TrainedHybrid:
    return train_hybrid(
        data.events,
        catalogue=data.catalogue,
        segments=data.segments,
        weights=data.weights,
        validation_days=validation_days,
        k=k,
    )


def register(
    registry: ModelRegistry,
    data: TrainingInput,
    trained: TrainedHybrid,
    *,
    rules: BusinessRules | None = None,
    promote: bool = True,
) -> ModelVersion:
    """Store the trained hybrid (as a serving bundle) as the next version of ``recs``."""
    stamps = pd.to_datetime(data.events["timestamp"], utc=True)
    until = stamps.max().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    bundle = RecsBundle(
        model=trained.model,
        weights=data.weights,
        trained_until=until,
        rules=rules or BusinessRules(),
        segment_trait=data.segment_trait,
        source=data.source,
    )
    metrics: dict[str, Any] = {"fit_seconds": round(trained.fit_seconds, 2)}
    if trained.tuning is not None:
        metrics["validation_ndcg10"] = round(trained.tuning.validation_ndcg, 4)
        metrics["validation_users"] = trained.tuning.validation_users
    data_window = {
        "from": stamps.min().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "to": until,
        "events": len(data.events),
        "source": data.source,
    }
    model_data = trained.model.data_
    return registry.register(
        MODEL_NAME,
        bundle,
        kind=MODEL_KIND,
        features=sorted(trained.model.weights),
        params={
            "weights": dict(trained.model.weights),
            "users": model_data.n_users,
            "items": model_data.n_items,
            "interaction_weights": asdict(data.weights),
        },
        metrics=metrics,
        data_window=data_window,
        promote=promote,
    )
