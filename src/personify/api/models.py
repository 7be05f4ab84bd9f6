"""Registered models over HTTP (admin key): list, report, promote, roll back, score one.

Training is a batch job (``personify train ...``); these routes manage and serve what it
registered. Scoring one profile reads only that profile's events through the event store
port, so it works in both the single-process and the worker set-ups.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from personify.api.deps import AnalystReads, Engine
from personify.errors import Forbidden, InvalidInput, Problem
from personify.facade import Personify
from personify.models.registry import ModelRegistry
from personify.models.serving import ServedModel, score_events

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[AnalystReads])

_MAX_EVENTS = 50_000
# The serving version of each model, loaded once: versions never change once written.
_loaded: dict[tuple[str, str], tuple[int, Any]] = {}
_lock = threading.Lock()


class Promotion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(..., ge=1, description="The version to serve.")


def _registry(p: Personify) -> ModelRegistry:
    return ModelRegistry(p.settings.data_dir / "models")


def _served(p: Personify, name: str) -> tuple[ServedModel, int]:
    registry = _registry(p)
    meta = registry.current(name)
    key = (str(registry.root), name)
    with _lock:
        version, model = _loaded.get(key, (0, None))
    if model is None or version != meta.version:
        model, meta = registry.load(name, meta.version)
        with _lock:
            _loaded[key] = (meta.version, model)
    if not isinstance(model, ServedModel):
        raise InvalidInput(
            f"model {name!r} does not score profiles",
            hint="score with a churn or purchase model",
            problems=[Problem("name", f"kind {meta.kind}")],
        )
    return model, meta.version


@router.get("")
def list_models(p: Engine) -> dict[str, Any]:
    """Every model name with its versions (the serving one marked ``promoted``)."""
    registry = _registry(p)
    return {
        "models": [
            {"name": name, "versions": [m.as_dict() for m in registry.versions(name)]}
            for name in registry.names()
        ]
    }


@router.get("/{name}")
def report(
    name: str, p: Engine, version: Annotated[int | None, Query(ge=1)] = None
) -> dict[str, Any]:
    """One version's metadata, metrics and data window (default: the serving version)."""
    registry = _registry(p)
    model, meta = registry.load(name, version)
    body = meta.as_dict()
    if isinstance(model, ServedModel):
        body["importance"] = dict(list(model.estimator.importance().items())[:15])
    return body


@router.post("/{name}/promote")
def promote(name: str, body: Promotion, p: Engine) -> dict[str, Any]:
    """Serve ``version`` of the model from now on."""
    return _registry(p).promote(name, body.version).as_dict()


@router.post("/{name}/rollback")
def rollback(name: str, p: Engine) -> dict[str, Any]:
    """Serve the version promoted before the current one again."""
    return _registry(p).rollback(name).as_dict()


@router.get("/{name}/score/{profile_id}")
async def score_profile(
    name: str,
    profile_id: str,
    p: Engine,
    top: Annotated[int, Query(ge=0, le=50)] = 5,
) -> dict[str, Any]:
    """Score one profile now with the serving version, with its top contributing features."""

    def work() -> dict[str, Any]:
        model, version = _served(p, name)
        view = p.profile(profile_id)  # NotFound for unknown ids; follows merges
        consent = p.privacy.may("profiling", view) if p.privacy is not None else None
        if consent is not None and not consent.allowed:  # automated profiling needs consent
            raise Forbidden(
                f"this profile may not be scored: {consent.reason}",
                hint="scores need the person's 'profiling' consent (POST /v1/consent)",
            )
        ids = [view["profile_id"], *view.get("merged_from", [])]
        now = p.clock.now()
        rows = p.stores.events.timeline(ids, _MAX_EVENTS, None)
        result = score_events(model, rows, view["profile_id"], as_of=now.isoformat(), top=top)
        return {"model": name, "version": version, **result}

    return await run_in_threadpool(work)
