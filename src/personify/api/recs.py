"""Product recommendations for a person and similar items for a product page.

Access is that of ``POST /v1/decide``: a bearer key with role ``decide`` or ``admin``,
called from the site's server. Write keys, which ship in pages and apps, are refused, since
a "bought before" list reveals what a customer bought.

The handlers compute in the event loop rather than a thread pool: a request is a couple of
milliseconds of GIL-bound work, and handing it to a thread only adds GIL hand-offs (up to
the 5 ms switch interval each) to the latency tail.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from personify.api.decide import DecideAccess
from personify.api.deps import Engine
from personify.errors import InvalidInput, NotFound, Problem

router = APIRouter(
    prefix="/v1/recommendations", tags=["recommendations"], dependencies=[DecideAccess]
)

K = Annotated[int, Query(ge=1, le=100, description="How many items (1 to 100).")]
PLACEMENT = Annotated[
    str | None, Query(description="Where the list is shown: home, product, cart or email.")
]


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


_PERSON_PARAMS = frozenset({"user_id", "anonymous_id", "email", "profile_id", "k", "placement"})
_ITEM_PARAMS = frozenset({"k", "placement"})


def _known_params(request: Request, known: frozenset[str]) -> None:
    """Refuse query parameters this route does not read: ``userId`` (the spelling of event
    bodies and /v1/decide) would otherwise be ignored and answered as for a new visitor."""
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        snake = {
            name: "".join("_" + c.lower() if c.isupper() else c for c in name) for name in unknown
        }
        raise InvalidInput(
            f"unknown query parameter {', '.join(unknown)}",
            hint=f"this route reads {', '.join(sorted(known))}",
            problems=[
                Problem(
                    name,
                    f"not read here; did you mean {snake[name]}?"
                    if snake[name] in known
                    else "not read here",
                )
                for name in unknown
            ],
        )


@router.get("")
async def recommendations(
    request: Request,
    p: Engine,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    email: str | None = None,
    profile_id: str | None = None,
    k: K = 10,
    placement: PLACEMENT = None,
) -> Response:
    """Items for one person, best first, with the strategy used and a reason per item.

    Give at most one of ``user_id``, ``anonymous_id``, ``email`` or ``profile_id``. With none,
    or an identity not seen yet, the answer is for a new visitor (popular items).
    Events newer than the model's training window (this session's views) are taken into
    account without retraining.
    """
    from personify.recs.serving import service_for

    _known_params(request, _PERSON_PARAMS)
    given = {
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "email": email,
        "profile_id": profile_id,
    }
    present = [(kind, v) for kind, v in given.items() if v is not None]
    if len(present) > 1:
        raise InvalidInput(
            f"give at most one identity, got {', '.join(kind for kind, _ in present)}",
            hint="/v1/recommendations?user_id=u-42&k=10",
            problems=[Problem(kind, "only one identity per request") for kind, _ in present],
        )
    for kind, value in present:
        if not value.strip():
            raise InvalidInput(
                f"{kind} is empty",
                hint="leave it out for a new visitor",
                problems=[Problem(kind, "empty")],
            )

    def run() -> dict[str, Any]:
        pid = None
        if present:
            kind, value = present[0]
            if kind == "profile_id":
                pid = value
            else:
                try:
                    pid = p.lookup(kind, value)
                except NotFound:
                    pid = None  # a visitor we have not seen yet: recommend as for anyone new
        return service_for(p).for_profile(p, pid, k, placement).as_dict()

    return _json(run())


@router.get("/similar/{item_id}")
async def similar_items(
    request: Request, item_id: str, p: Engine, k: K = 10, placement: PLACEMENT = None
) -> Response:
    """Items like ``item_id`` (bought together; by description for items nobody bought yet)."""
    from personify.recs.serving import service_for

    _known_params(request, _ITEM_PARAMS)

    def run() -> dict[str, Any]:
        found = service_for(p).similar(item_id, k, placement)
        return {"item_id": item_id, **found.as_dict()}

    return _json(run())
