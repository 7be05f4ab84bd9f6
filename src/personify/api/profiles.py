"""Unified profiles and their timelines (admin key required)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from personify.api.deps import Analyst, Engine


def _json(body: dict[str, Any]) -> Response:
    # Profiles are plain JSON-ready dicts: orjson writes them directly (the hot read path).
    return Response(orjson.dumps(body), media_type="application/json")


router = APIRouter(prefix="/v1/profiles", tags=["profiles"], dependencies=[Analyst])


@router.get("/lookup")
async def lookup(
    p: Engine,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> Response:
    """The profile holding exactly one given identity."""
    kind, value = p.one_identity(
        {"user_id": user_id, "anonymous_id": anonymous_id, "email": email, "phone": phone},
        "/v1/profiles/lookup?email=ada@example.com",
    )
    return _json(p.profile_by(kind, value))


@router.get("/{profile_id}")
async def get_profile(profile_id: str, p: Engine) -> Response:
    """A unified profile; an id merged into another resolves to the survivor."""
    return _json(p.profile(profile_id))


@router.get("/{profile_id}/events")
async def timeline(
    profile_id: str,
    p: Engine,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: str | None = None,
) -> dict[str, Any]:
    """The profile's events, newest first (``before`` pages back by timestamp)."""
    events = await run_in_threadpool(p.timeline, profile_id, limit, before)
    return {"profile_id": profile_id, "events": events}
