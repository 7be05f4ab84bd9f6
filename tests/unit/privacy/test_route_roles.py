"""Every route declares the roles it needs, and no weaker role gets through."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import routing
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine

from personify.api.app import create_app
from personify.api.deps import ROLES
from personify.facade import Personify

iter_route_contexts = getattr(routing, "iter_route_contexts", None)
WRITE = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}  # a valid write key
# Open by design: liveness, the OpenAPI documents, and collection (checked by write keys).
EXEMPT = {
    "/health",
    "/v1/track",
    "/v1/identify",
    "/v1/page",
    "/v1/screen",
    "/v1/group",
    "/v1/alias",
    "/v1/batch",
}


def declared_roles(route: Any) -> Callable[[str], frozenset[str]] | None:
    """The ``allowed_roles`` of the role dependency anywhere in the route's dependencies."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        found = getattr(dep.call, "allowed_roles", None)
        if found is not None:
            return found  # type: ignore[no-any-return]
        stack.extend(dep.dependencies)
    return None


@pytest.fixture
def setup() -> Iterator[tuple[TestClient, Personify, dict[str, str]]]:
    p, _ = memory_engine()
    assert p.privacy is not None
    tokens = {role: p.privacy.keys.create(role, f"{role} test").token for role in ROLES}
    tokens["admin-key"] = "admin"
    with TestClient(create_app(p), raise_server_exceptions=False) as client:
        yield client, p, tokens


def _routes(app: Any) -> list[tuple[str, str, Any]]:
    """Every (method, path, route) of the app, routers included (FastAPI >= 0.165 keeps
    included routers lazily, so ``app.routes`` alone would miss them)."""
    contexts = iter_route_contexts(app.routes) if iter_route_contexts else app.routes
    out = []
    for route in contexts:
        if isinstance(route.original_route if iter_route_contexts else route, APIRoute):
            out += [(m, str(route.path), route) for m in sorted(route.methods or ())]
    return out


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_route_declares_a_role(setup: tuple[TestClient, Personify, dict[str, str]]) -> None:
    client, _, _ = setup
    missing = [
        f"{m} {path}"
        for m, path, route in _routes(client.app)
        if path not in EXEMPT and declared_roles(route) is None
    ]
    assert missing == []
    # and the walk found real routes with roles, including the privacy ones
    declared = {path for _, path, route in _routes(client.app) if declared_roles(route)}
    assert {"/v1/privacy/erase", "/v1/keys", "/v1/profiles/{profile_id}", "/v1/decide"} <= declared


def test_weaker_roles_are_refused_everywhere(
    setup: tuple[TestClient, Personify, dict[str, str]],
) -> None:
    client, _, tokens = setup
    checked = 0
    for method, path, route in _routes(client.app):
        allowed = declared_roles(route)
        if allowed is None:
            continue
        roles = allowed(method)
        assert "admin" in roles, f"{method} {path} locks out admin"
        for role in ROLES:
            if role in roles:
                continue
            res = client.request(
                method, _url(path), headers={"Authorization": f"Bearer {tokens[role]}"}, json={}
            )
            assert res.status_code in (401, 403), f"{role} got {res.status_code} on {method} {path}"
            checked += 1
        res = client.request(method, _url(path), json={})
        assert res.status_code in (401, 403), f"no key got {res.status_code} on {method} {path}"
        res = client.request(method, _url(path), headers=WRITE, json={})
        assert res.status_code in (401, 403), (
            f"a write key got {res.status_code} on {method} {path}"
        )
        res = client.request(method, _url(path), headers={"Authorization": "Bearer pk_x_y"})
        assert res.status_code == 401, f"a made-up key got {res.status_code} on {method} {path}"
    assert checked > 50


def test_write_keys_only_collect(setup: tuple[TestClient, Personify, dict[str, str]]) -> None:
    """The decision and recommendation APIs, which once took write keys, refuse them with
    a 403 that names the fix; collection still takes them."""
    client, _, _ = setup
    serving = [
        (m, path)
        for m, path, _ in _routes(client.app)
        if path.startswith(("/v1/decide", "/v1/recommendations")) and path != "/v1/decide/report"
    ]
    assert {("POST", "/v1/decide"), ("GET", "/v1/recommendations")} <= set(serving)
    assert ("GET", "/v1/recommendations/similar/{item_id}") in serving
    for method, path in serving:
        res = client.request(method, _url(path), headers=WRITE, json={})
        assert res.status_code == 403, f"a write key got {res.status_code} on {method} {path}"
        assert res.json()["message"].startswith("write keys only collect events")
        assert "--role decide" in res.json()["hint"]
    event = {"userId": "u1", "event": "Viewed"}
    assert client.post("/v1/track", json=event, headers=WRITE).status_code == 200


def test_allowed_roles_get_past_authorization(
    setup: tuple[TestClient, Personify, dict[str, str]],
) -> None:
    client, _, tokens = setup
    for method, path, route in _routes(client.app):
        allowed = declared_roles(route)
        if allowed is None or method == "DELETE":
            continue
        for role in sorted(allowed(method)):
            res = client.request(
                method, _url(path), headers={"Authorization": f"Bearer {tokens[role]}"}, json={}
            )
            assert res.status_code not in (401, 403), f"{role} refused on {method} {path}"
            assert res.status_code < 500, f"{role}: {res.status_code} on {method} {path}"


def test_bootstrap_admin_key_still_works(
    setup: tuple[TestClient, Personify, dict[str, str]],
) -> None:
    client, _, _ = setup
    res = client.get("/v1/keys", headers={"Authorization": "Bearer admin"})
    assert res.status_code == 200
    assert {k["role"] for k in res.json()["keys"]} == set(ROLES)


def test_revoked_key_stops_working(setup: tuple[TestClient, Personify, dict[str, str]]) -> None:
    client, p, tokens = setup
    headers = {"Authorization": f"Bearer {tokens['analyst']}"}
    assert client.get("/v1/stats", headers=headers).status_code == 200
    key_id = tokens["analyst"].split("_")[1]
    admin = {"Authorization": "Bearer admin"}
    assert client.delete(f"/v1/keys/{key_id}", headers=admin).json()["revoked_at"]
    assert client.get("/v1/stats", headers=headers).status_code == 401
    assert p.privacy is not None
    actions = [r["action"] for r in p.privacy.audit.query(action="keys.*")]
    assert actions == ["keys.revoke"]
