"""``POST /v1/decide`` is answered by an ASGI fast path; its answers must be exactly those of
the FastAPI route it stands in for, good and bad requests alike, and the outer middleware
(the rate limit) must still apply to it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.unit.decide.conftest import BASE, load
from tests.unit.helpers import memory_engine

from personify.api.app import create_app
from personify.api.decide import DecideFastPath
from personify.decide.service import Decider
from personify.facade import Personify

WRITE = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}
RULES = "rules:\n  hero:\n    - {id: vip, when: {traits.plan: pro}, show: winback}\n"
GOOD = {"userId": "u1", "context": {"channel": "web"}, "placements": ["hero"]}


def app_for(engine: Personify, decider: Decider, *, fast: bool) -> FastAPI:
    app = create_app(engine, own_engine=False)
    app.state.decider = decider
    if not fast:  # the route alone, as FastAPI serves it
        app.user_middleware = [m for m in app.user_middleware if m.cls is not DecideFastPath]
    return app


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient, dict[str, str]]]:
    engine, _ = memory_engine()
    decider = Decider(engine, poll_interval=0.0)
    load(decider.store, BASE + RULES, tmp_path)
    engine.identify(user_id="u1", traits={"plan": "pro", "first_name": "Ada"})
    engine.drain()
    assert engine.privacy is not None
    keys = {
        role: {"Authorization": f"Bearer {engine.privacy.keys.create(role, role).token}"}
        for role in ("decide", "analyst")
    }
    with (
        TestClient(app_for(engine, decider, fast=True)) as fast,
        TestClient(app_for(engine, decider, fast=False)) as route,
    ):
        yield fast, route, {k: v["Authorization"] for k, v in keys.items()}
    decider.close()
    engine.close()


def comparable(response: Any) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    try:
        body = response.json()
    except ValueError:
        return response.status_code, headers, response.text
    for decision in body.get("decisions", []) if isinstance(body, dict) else []:
        assert decision.pop("decision_id").startswith("d_")
    return response.status_code, headers, body


CASES: list[tuple[str, str, bytes, dict[str, str]]] = [
    ("POST", "/v1/decide", orjson.dumps(GOOD), WRITE),
    ("POST", "/v1/decide", orjson.dumps({**GOOD, "userId": "nobody"}), WRITE),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {"Authorization": "decide-key"}),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {"Authorization": "analyst-key"}),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {"Authorization": "Bearer pk_x_wrong"}),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {"Authorization": "Basic bm90LWEta2V5Og=="}),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {"Authorization": "Basic !!"}),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {}),
    ("POST", "/v1/decide", b"{not json", WRITE),
    ("POST", "/v1/decide", b"[1, 2]", WRITE),
    ("POST", "/v1/decide", orjson.dumps({**GOOD, "extra": 1}), WRITE),
    ("POST", "/v1/decide", orjson.dumps({"placements": ["hero"]}), WRITE),
    ("POST", "/v1/decide", orjson.dumps({**GOOD, "placements": ["nowhere"]}), WRITE),
    ("POST", "/v1/decide", orjson.dumps({**GOOD, "context": {"channel": "fax"}}), WRITE),
    ("POST", "/v1/decide", b'{"userId": "' + b"x" * 70_000 + b'"}', WRITE),
    ("GET", "/v1/decide", b"", WRITE),
    ("POST", "/v1/decide/", orjson.dumps(GOOD), WRITE),
]


@pytest.mark.parametrize(("method", "path", "body", "headers"), CASES)
def test_the_fast_path_answers_exactly_as_the_route(
    clients: tuple[TestClient, TestClient, dict[str, str]],
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    fast, route, keys = clients
    if headers.get("Authorization", "").endswith("-key"):
        headers = {"Authorization": keys[headers["Authorization"].removesuffix("-key")]}
    sent = {"content": body, "headers": headers, "follow_redirects": False}
    answers = [comparable(c.request(method, path, **sent)) for c in (fast, route)]  # type: ignore[arg-type]
    assert answers[0] == answers[1]


def test_the_rate_limit_still_applies_to_the_fast_path(tmp_path: Path) -> None:
    engine, _ = memory_engine(privacy={"rate_per_second": 0.001, "rate_burst": 2})
    decider = Decider(engine, poll_interval=0.0)
    load(decider.store, BASE + RULES, tmp_path)
    with TestClient(app_for(engine, decider, fast=True)) as client:
        codes = [client.post("/v1/decide", json=GOOD, headers=WRITE).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    decider.close()
    engine.close()
