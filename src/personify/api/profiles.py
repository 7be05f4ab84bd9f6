"""Unified profiles and their timelines (admin key required)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from personify.api.deps import Analyst, Engine, authorize, error_response, route_path
from personify.errors import PersonifyError
from personify.facade import LOOKUP_KINDS, Personify
from personify.profiles.records import instant


def _json(body: dict[str, Any]) -> Response:
    # Profiles are plain JSON-ready dicts: orjson writes them directly (the hot read path).
    return Response(orjson.dumps(body), media_type="application/json")


router = APIRouter(prefix="/v1/profiles", tags=["profiles"], dependencies=[Analyst])


def _lookup(p: Personify, given: dict[str, str | None]) -> Response:
    kind, value = p.one_identity(given, "/v1/profiles/lookup?email=ada@example.com")
    return _json(p.profile_by(kind, value))


@router.get("/lookup")
async def lookup(
    p: Engine,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> Response:
    """The profile holding exactly one given identity."""
    return _lookup(
        p, {"user_id": user_id, "anonymous_id": anonymous_id, "email": email, "phone": phone}
    )


@router.get("/{profile_id}")
async def get_profile(profile_id: str, p: Engine) -> Response:
    """A unified profile; an id merged into another resolves to the survivor."""
    return _json(p.profile(profile_id))


PREFIX = "/v1/profiles/"


class ProfileReadFastPath:
    """ASGI middleware that answers ``GET /v1/profiles/lookup`` and ``GET
    /v1/profiles/{profile_id}`` itself, with the routes' own code.

    Profile reads have a latency target (p99 under 5 ms), and FastAPI's per-request
    machinery (routing, solving the dependencies and the four query parameters) costs about
    as much as the read itself. This runs what the routes run: the analyst access check and
    audit record (:func:`authorize`), :func:`_lookup` or ``Personify.profile``, and the app's
    own error handlers, so the answers are the same byte for byte
    (``tests/unit/api/test_profile_fast_path.py`` compares them). The outer middleware (the
    rate limit, the 500 handler) still applies; any other method or path, ``/events``
    included, goes on to the routes, which stay declared for the OpenAPI document.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._allowed: frozenset[str] = Analyst.dependency.allowed_roles("GET")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        rest = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
        if not rest or "/" in rest:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        template = PREFIX + ("lookup" if rest == "lookup" else "{profile_id}")
        try:
            p: Personify = request.app.state.personify
            authorize(p, request, self._allowed, template, request.headers.get("authorization"))
            if rest == "lookup":
                query = request.query_params
                response = _lookup(p, {k: query.get(k) for k in LOOKUP_KINDS})
            else:
                response = _json(p.profile(rest))
        except PersonifyError as exc:
            response = await error_response(request, exc)
        await response(scope, receive, send)


@router.get("/{profile_id}/events")
async def timeline(
    profile_id: str,
    p: Engine,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        str | None, Query(description="ISO-8601 timestamp; events strictly before it")
    ] = None,
) -> dict[str, Any]:
    """The profile's events, newest first (``before`` pages back by timestamp)."""
    if before is not None:
        before = instant("before", before)
    events = await run_in_threadpool(p.timeline, profile_id, limit, before)
    return {"profile_id": profile_id, "events": events}
