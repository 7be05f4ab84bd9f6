"""Quarantined messages: list them and replay them (admin key required)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query

from personify.api.deps import Admin, Engine

router = APIRouter(prefix="/v1/quarantine", tags=["quarantine"], dependencies=[Admin])


@router.get("")
def list_items(
    p: Engine,
    status: Literal["quarantined", "replayed", "all"] = "quarantined",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    wanted = None if status == "all" else status
    return {
        "items": p.quarantined(wanted, limit, offset),
        "total": p.stores.quarantine.count(wanted),
    }


@router.post("/{item_id}/replay")
def replay(
    item_id: str,
    p: Engine,
    payload: Annotated[dict[str, Any] | None, Body(embed=True)] = None,
) -> dict[str, Any]:
    """Validate again (with a corrected ``payload`` if given) and accept if now valid.

    A replay that fails changes nothing stored; the answer lists the new problems.
    """
    result = p.replay(item_id, payload)
    if result.get("needs_payload"):
        result["hint"] = 'send the corrected message as {"payload": {...}} in the body'
    return result


@router.post("/replay")
def replay_all(p: Engine) -> dict[str, Any]:
    results = [p.replay(item["id"]) for item in p.quarantined("quarantined", 10_000)]
    return {
        "replayed": sum(1 for r in results if r["status"] == "replayed"),
        "still_quarantined": sum(1 for r in results if r["status"] == "quarantined"),
        "results": results,
    }
