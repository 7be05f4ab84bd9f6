"""``POST /v1/decide`` (what each person sees) and the per-content report."""

from __future__ import annotations

import threading
import weakref
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from personify.api.deps import (
    Analyst,
    Engine,
    basic_username,
    bearer_caller,
    error_response,
    route_path,
)
from personify.decide.request import parse_request
from personify.decide.service import Decider
from personify.errors import (
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    PersonifyError,
    Problem,
    Unauthorized,
    Unavailable,
)
from personify.experiments.serving import attach
from personify.facade import Personify
from personify.profiles.records import instant

MAX_BODY = 65_536
DECIDE_PATH = "/v1/decide"
_create_lock = threading.Lock()


def decider(request: Request) -> Decider:
    """The app's :class:`Decider`, built on first use over the app's engine."""
    state = request.app.state
    found = getattr(state, "decider", None)
    if found is None:
        with _create_lock:
            found = getattr(state, "decider", None)
            if found is None:
                found = Decider(state.personify)
                # experiments and bandits on placements are policies of this decider
                found.experiments = attach(found)  # type: ignore[attr-defined]
                # flush the decision log when the engine goes away (or at exit)
                weakref.finalize(state.personify, found.close)
                state.decider = found
    assert isinstance(found, Decider)
    return found


async def _decider_dependency(request: Request) -> Decider:
    """:func:`decider` as a dependency. ``async`` so that FastAPI calls it on the event loop:
    a plain ``def`` dependency costs a hop to the thread pool on every request."""
    return decider(request)


DeciderDep = Annotated[Decider, Depends(_decider_dependency)]


DECIDE_KEY_HINT = (
    "create a key with role 'decide' (`personify keys create --role decide --name <site>`, "
    "or POST /v1/keys with an admin key) and send it as 'Authorization: Bearer <key>'"
)


async def require_decide_access(
    p: Engine, authorization: Annotated[str | None, Header()] = None
) -> None:
    """Who may ask for decisions and recommendations: a bearer key with role ``decide`` or
    ``admin`` (the bootstrap admin key included).

    Write keys (HTTP Basic) only collect events: they ship in pages and apps, so anyone can
    read them, and an answer here can reveal what a person bought or which segments they are
    in. A known write key gets 403 naming the fix; a wrong one 401.
    """
    scheme, _, _token = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            p.collector.authenticate(basic_username(authorization), None)
        except Unauthorized:
            raise Unauthorized(
                "this API takes an API key as 'Authorization: Bearer <key>', not HTTP Basic",
                hint=DECIDE_KEY_HINT,
            ) from None
        raise Forbidden(
            "write keys only collect events; decisions and recommendations need an API key "
            "with role 'decide'",
            hint=DECIDE_KEY_HINT,
        )
    try:
        caller = bearer_caller(p, authorization)
    except Unavailable:
        raise Unavailable(
            "no API keys exist and PERSONIFY_ADMIN_KEY is not set, so nobody may ask for decisions",
            hint="create a key with `personify keys create --role decide --name <site>` (or "
            "set PERSONIFY_ADMIN_KEY) and send it as 'Authorization: Bearer <key>'",
        ) from None
    if caller.role not in DECIDE_ROLES:
        raise Forbidden(
            f"role {caller.role!r} may not ask for decisions or recommendations",
            hint="use a key with role 'decide' (or 'admin')",
        )


DECIDE_ROLES = frozenset({"admin", "decide"})
require_decide_access.allowed_roles = lambda _method: DECIDE_ROLES  # type: ignore[attr-defined]
DecideAccess = Depends(require_decide_access)
router = APIRouter(tags=["decide"])


_REQUEST_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "userId": {"type": "string"},
                        "anonymousId": {"type": "string"},
                        "context": {"type": "object"},
                        "placements": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["placements"],
                },
                "example": {
                    "userId": "user_0000005",
                    "context": {"channel": "web", "page": "/", "timezone": "Europe/London"},
                    "placements": ["home_hero"],
                },
            }
        },
    }
}


@router.post(DECIDE_PATH, dependencies=[DecideAccess], openapi_extra=_REQUEST_DOC)
async def decide(request: Request, d: DeciderDep) -> Response:
    """Per placement: rendered content, variant, decision_id, reasons and propensity.

    Served by :class:`DecideFastPath` in the app; this route is what it stands in for.
    """
    return answer(d, await request.body())


def answer(d: Decider, body: bytes) -> Response:
    """The response to a decide request body (raises :class:`PersonifyError` subclasses)."""
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"body is {len(body)} bytes; the limit is {MAX_BODY}")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            "body is not valid JSON",
            hint="send a JSON object with Content-Type: application/json",
            problems=[Problem("body", str(exc))],
        ) from None
    decisions = d.decide_request(parse_request(data))
    return Response(
        orjson.dumps({"decisions": [x.as_dict() for x in decisions]}),
        media_type="application/json",
    )


class DecideFastPath:
    """ASGI middleware that answers ``POST /v1/decide`` itself, with the route's own code.

    The decision API is the one with a latency and throughput target, and on it FastAPI's
    per-request machinery (routing, solving dependencies, the exception and exit-stack
    middleware) costs more than the decision itself. This runs what the route runs (its
    access check, :func:`decider`, :func:`answer`) and renders errors with the app's own
    :class:`PersonifyError` handler, so the answers are the same byte for byte
    (``tests/unit/decide/test_fast_path.py`` compares them). It sits inside the outer
    middleware, so the rate limit, the body limit and the 500 handler still apply; the
    route stays declared for the OpenAPI document and the role checks, and anything but a
    ``POST`` to exactly this path goes on to the routes as before.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and route_path(scope) == DECIDE_PATH
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            p: Personify = request.app.state.personify
            await require_decide_access(p, request.headers.get("authorization"))
            response = answer(decider(request), await request.body())
        except PersonifyError as exc:
            response = await error_response(request, exc)
        await response(scope, receive, send)


@router.get("/v1/decide/report", dependencies=[Analyst])
def report(
    d: DeciderDep,
    placement: str | None = None,
    since: Annotated[str | None, Query(description="ISO timestamp; decisions at or after")] = None,
) -> dict[str, Any]:
    """Per content: impressions (served decisions), views, clicks, conversions, revenue."""
    return {"content": d.report(placement, None if since is None else instant("since", since))}
