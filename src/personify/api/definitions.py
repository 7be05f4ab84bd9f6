"""Versioned definitions over HTTP: content, placements, rules (and any workspace section).

Every change is checked exactly as ``personify apply`` checks it, then stored as a new version
that can be listed, diffed and rolled back. Decision paths pick changes up within a second.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request

from personify.api.decide import DeciderDep
from personify.api.deps import Marketer
from personify.decide.service import Decider
from personify.definitions import Definition
from personify.errors import InvalidInput, NotFound, Problem
from personify.workspace import Plan, Section, sections

router = APIRouter(prefix="/v1/definitions", tags=["definitions"], dependencies=[Marketer])
ACTOR = "admin-api"  # until API keys carry a name (issue 6)


def _section(kind: str) -> Section:
    known = {s.kind: s for s in sections().values()}
    found = known.get(kind)
    if found is None:
        raise NotFound(
            f"no definition kind {kind!r}",
            hint=f"kinds are: {', '.join(sorted(known))}",
        )
    return found


def _changed(d: Decider, definition: Definition) -> dict[str, Any]:
    d.engine.catalog.refresh()  # this process sees it now; others within their poll interval
    return definition.as_dict()


@router.get("/{kind}")
def list_definitions(kind: str, d: DeciderDep, include_deleted: bool = False) -> dict[str, Any]:
    """The latest version of every definition of a kind."""
    _section(kind)
    items = d.store.list(kind, include_deleted)
    return {"kind": kind, "items": [x.as_dict() for x in items]}


@router.get("/{kind}/{key}")
def get_definition(
    kind: str, key: str, d: DeciderDep, version: Annotated[int | None, Query(ge=1)] = None
) -> dict[str, Any]:
    """One definition: the latest live version, or exactly ``version``."""
    _section(kind)
    return d.store.get(kind, key, version).as_dict()


@router.put("/{kind}/{key}")
async def put_definition(
    kind: str, key: str, request: Request, d: DeciderDep, message: str = ""
) -> dict[str, Any]:
    """Create or change a definition (the JSON body); an unchanged body makes no version."""
    section = _section(kind)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("body is not valid JSON", problems=[Problem("body", str(exc))]) from None
    plan = Plan(d.store, sections())
    problems = section.validate(key, body, plan)
    if problems:
        raise InvalidInput(
            f"invalid {kind} {key!r}: "
            + "; ".join(f"{p.field or '(body)'}: {p.message}" for p in problems),
            hint="fix each listed problem (fields are relative to the body)",
            problems=problems,
        )
    stored_body = section.to_body(body)
    if section.write is not None:
        written = section.write(d.store, key, stored_body, ACTOR, message)
    else:
        written = d.store.put(kind, key, stored_body, ACTOR, message)
    return _changed(d, written)


@router.delete("/{kind}/{key}")
def delete_definition(kind: str, key: str, d: DeciderDep) -> dict[str, Any]:
    """Delete (a tombstone version; roll back to restore)."""
    _section(kind)
    return _changed(d, d.store.delete(kind, key, ACTOR))


@router.get("/{kind}/{key}/history")
def history(kind: str, key: str, d: DeciderDep) -> dict[str, Any]:
    """Every version, oldest first."""
    _section(kind)
    return {"kind": kind, "key": key, "versions": [x.as_dict() for x in d.store.history(kind, key)]}


@router.get("/{kind}/{key}/diff")
def diff(
    kind: str,
    key: str,
    d: DeciderDep,
    a: Annotated[int, Query(ge=1)],
    b: Annotated[int, Query(ge=1)],
) -> dict[str, Any]:
    """What changed from version ``a`` to ``b``, one line per JSON path."""
    _section(kind)
    return {"kind": kind, "key": key, "a": a, "b": b, "changes": d.store.diff(kind, key, a, b)}


@router.post("/{kind}/{key}/rollback")
def rollback(
    kind: str, key: str, d: DeciderDep, version: Annotated[int, Query(ge=1)]
) -> dict[str, Any]:
    """Write a new version equal to ``version``."""
    _section(kind)
    return _changed(d, d.store.rollback(kind, key, version, ACTOR))
