"""API keys: create (the token is shown once), list and revoke. Admin only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from personify.api.deps import Admin, Engine
from personify.errors import InvalidInput, Problem, Unavailable
from personify.facade import Personify
from personify.privacy.keys import ROLES
from personify.privacy.service import Privacy

router = APIRouter(prefix="/v1/keys", tags=["access"], dependencies=[Admin])


def privacy_of(p: Personify) -> Privacy:
    if p.privacy is None:
        raise Unavailable("privacy services are not wired", hint="build the engine with build()")
    return p.privacy


def actor(request: Request) -> str:
    caller = getattr(request.state, "caller", None)
    return str(getattr(caller, "actor", "unknown"))


@router.post("", status_code=201)
def create_key(
    request: Request,
    p: Engine,
    body: Annotated[dict[str, Any], Body(examples=[{"role": "analyst", "name": "reporting"}])],
) -> dict[str, Any]:
    """Create a key for a role; the answer's ``token`` is the only time it is shown."""
    role, name = body.get("role"), body.get("name")
    unknown = sorted(set(body) - {"role", "name"})
    problems = [
        Problem(k, "unknown field; a key has only a role and a name (revoke it to end it)")
        for k in unknown
    ]
    if not isinstance(role, str):
        problems.append(Problem("role", f"required, one of {', '.join(ROLES)}"))
    if not isinstance(name, str):
        problems.append(Problem("name", "required, who or what uses the key"))
    if problems or not isinstance(role, str) or not isinstance(name, str):
        raise InvalidInput(
            f"unknown fields: {', '.join(unknown)}" if unknown else "a key needs a role and a name",
            hint='for example {"role": "analyst", "name": "reporting"}',
            problems=problems,
        )
    privacy = privacy_of(p)
    created = privacy.keys.create(role, name)
    privacy.audit.record(actor(request), "keys.create", created.key.key_id, {"role": role})
    return {**created.key.as_dict(), "token": created.token}


@router.get("")
def list_keys(p: Engine, include_revoked: Annotated[bool, Query()] = False) -> dict[str, Any]:
    """Keys without their secrets (only a hash is stored)."""
    return {"keys": [k.as_dict() for k in privacy_of(p).keys.list(include_revoked)]}


@router.delete("/{key_id}")
def revoke_key(request: Request, p: Engine, key_id: str) -> dict[str, Any]:
    """Revoke a key: it stops working at once."""
    privacy = privacy_of(p)
    key = privacy.keys.revoke(key_id)
    privacy.audit.record(actor(request), "keys.revoke", key_id, {"role": key.role})
    return key.as_dict()
