"""Segments over HTTP: definitions (versioned), dry runs, members export, size over time.

Admin key required (issue 6 narrows this to roles).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ConfigDict

from personify.api.deps import Engine, Marketer
from personify.segments.service import MAX_SQLITE_INT, Segments

router = APIRouter(prefix="/v1/segments", tags=["segments"], dependencies=[Marketer])
ACTOR = "api"
MAX_INT = MAX_SQLITE_INT  # sequence numbers, offsets and versions are SQLite integers

SegmentBody = Annotated[
    dict[str, Any],
    Body(
        examples=[
            {
                "key": "cart_abandoner",
                "name": "Cart abandoners",
                "condition": {
                    "$sequence": {
                        "first": {"name": "Product Added"},
                        "notFollowedBy": {"name": "Order Completed"},
                        "within": "24h",
                    }
                },
            }
        ]
    ),
]


@router.get("")
def list_segments(p: Engine) -> dict[str, Any]:
    """Every segment with its current size."""
    return {"segments": Segments(p).overview()}


@router.post("", status_code=201)
def create_or_update(p: Engine, body: SegmentBody) -> dict[str, Any]:
    """Save a segment (a new version if it exists); membership follows at once."""
    s = Segments(p)
    return s.describe(s.save(body, ACTOR))


@router.get("/templates")
def templates(p: Engine) -> dict[str, Any]:
    """Built-in templates with their parameters and default bodies."""
    return {"templates": Segments(p).templates()}


class FromTemplate(BaseModel):
    """``key`` (save under another key) and ``params``; any other field is refused."""

    model_config = ConfigDict(extra="forbid")

    key: str | None = None
    params: dict[str, Any] | None = None


@router.post("/from-template/{name}", status_code=201)
def from_template(
    name: str, p: Engine, body: Annotated[FromTemplate | None, Body()] = None
) -> dict[str, Any]:
    s = Segments(p)
    given = body or FromTemplate()
    return s.describe(s.from_template(name, ACTOR, given.key, given.params))


@router.post("/dry-run")
def dry_run(
    p: Engine, body: SegmentBody, sample: Annotated[int, Query(ge=0, le=1000)] = 10
) -> dict[str, Any]:
    """How many profiles a condition matches now, and a sample of them (nothing is saved)."""
    return Segments(p).dry_run(body, sample)


@router.post("/rebuild")
def rebuild(
    p: Engine, keys: Annotated[list[str] | None, Body(embed=True)] = None
) -> dict[str, Any]:
    """Recompute segments from the whole event history; returns their sizes."""
    return {"sizes": Segments(p).rebuild(keys)}


@router.get("/changes")
def changes(
    p: Engine,
    after: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """The entered/exited stream (journeys and decisions consume it), from sequence ``after``."""
    items = p.stores.segments.changes(after, limit)
    return {"changes": items, "next": items[-1]["seq"] if items else after}


@router.get("/{key}")
def get_segment(key: str, p: Engine) -> dict[str, Any]:
    s = Segments(p)
    return s.describe(s.get(key))


@router.put("/{key}")
def put_segment(key: str, p: Engine, body: SegmentBody) -> dict[str, Any]:
    s = Segments(p)
    return s.describe(s.save(body, ACTOR, key=key))


@router.delete("/{key}")
def delete_segment(key: str, p: Engine) -> dict[str, Any]:
    gone = Segments(p).delete(key, ACTOR)
    return {"key": key, "deleted": True, "version": gone.version}


@router.post("/{key}/freeze", status_code=201)
def freeze(key: str, p: Engine, into: Annotated[str, Body(embed=True)]) -> dict[str, Any]:
    """Save today's members as a static segment named ``into``."""
    s = Segments(p)
    return s.describe(s.freeze(key, into, ACTOR))


@router.get("/{key}/versions")
def versions(key: str, p: Engine) -> dict[str, Any]:
    return {"versions": Segments(p).versions(key)}


@router.post("/{key}/rollback")
def rollback(
    key: str, p: Engine, version: Annotated[int, Body(embed=True, ge=1, le=MAX_INT)]
) -> dict[str, Any]:
    s = Segments(p)
    return s.describe(s.rollback(key, version, ACTOR))


@router.get("/{key}/members")
def members(
    key: str,
    p: Engine,
    format: Literal["json", "csv", "parquet"] = "json",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> Any:
    """Current members (JSON pages), or all of them as a CSV or Parquet download."""
    s = Segments(p)
    if format == "json":
        return {"members": s.members(key, limit, offset), "total": s.store.sizes().get(key, 0)}
    media = "text/csv" if format == "csv" else "application/vnd.apache.parquet"
    return Response(
        s.export(key, format),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{key}.{format}"'},
    )


@router.get("/{key}/size")
def size_over_time(
    key: str,
    p: Engine,
    start: str | None = None,
    end: str | None = None,
    every: str = "1d",
) -> dict[str, Any]:
    """Members at each instant between ``start`` and ``end`` (from the membership history)."""
    return {"key": key, "points": Segments(p).size_over_time(key, start, end, every)}
