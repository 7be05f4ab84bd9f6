"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

import personify
from personify.api import collect, decide, definitions, errors, profiles, quarantine, segments
from personify.api import experiments as experiments_api
from personify.api import models as models_api
from personify.api import privacy as privacy_api
from personify.api import recs as recs_api
from personify.api.deps import Analyst, Engine
from personify.facade import Personify


def create_app(engine: Personify, *, own_engine: bool = True) -> FastAPI:
    """The API over ``engine``; with ``own_engine`` it starts and closes it with the app."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            if own_engine:
                engine.close()

    app = FastAPI(
        title="personify",
        version=personify.__version__,
        description="Segment-compatible collection, unified profiles and personalization.",
        lifespan=lifespan,
    )
    app.state.personify = engine
    errors.install(app)
    # Requests are matched against routes in order: the decision API, the one with a
    # latency target, goes first so it is found after two routes, not thirty.
    app.include_router(decide.router)
    app.include_router(collect.router)
    app.include_router(profiles.router)
    app.include_router(quarantine.router)
    app.include_router(segments.router)
    app.include_router(definitions.router)
    app.include_router(experiments_api.router)
    app.include_router(recs_api.router)
    app.include_router(models_api.router)
    # POST /v1/decide without FastAPI's per-request machinery; added before the rate limit,
    # so the rate limit (the later, outer middleware) still applies to it
    app.add_middleware(decide.DecideFastPath)
    app.add_middleware(profiles.ProfileReadFastPath)  # the profile reads, likewise
    privacy_api.install(app)  # consent, privacy jobs, audit, API keys, rate limits

    @app.get("/health", tags=["ops"])
    def health(p: Engine) -> dict[str, Any]:
        """Liveness plus the processing lag (messages accepted but not yet in profiles)."""
        return {
            "status": "ok",
            "log_head": p.stores.log.head(),
            "processed_up_to": p.processor.position,
            "lag": p.processor.lag(),
        }

    @app.get("/v1/stats", tags=["ops"], dependencies=[Analyst])
    def stats(p: Engine) -> dict[str, Any]:
        """Counts of profiles, events and quarantined messages, and the last processing error."""
        return p.stats()

    return app
