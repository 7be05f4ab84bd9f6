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
from tests.unit.helpers import decide_key, memory_engine

from personify.api.app import create_app
from personify.api.decide import DecideFastPath
from personify.config import Settings
from personify.decide.service import Decider
from personify.facade import Personify
from personify.platform import build

WRITE = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}
DECIDE = {"Authorization": "decide-key"}  # stands for a key made in the fixture
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
    ("POST", "/v1/decide", orjson.dumps(GOOD), DECIDE),
    ("POST", "/v1/decide", orjson.dumps({**GOOD, "userId": "nobody"}), DECIDE),
    ("POST", "/v1/decide", orjson.dumps(GOOD), WRITE),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {"Authorization": "Bearer admin"}),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {"Authorization": "analyst-key"}),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {"Authorization": "Bearer pk_x_wrong"}),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {"Authorization": "Basic bm90LWEta2V5Og=="}),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {"Authorization": "Basic !!"}),
    ("POST", "/v1/decide", orjson.dumps(GOOD), {}),
    ("POST", "/v1/decide", b"{not json", DECIDE),
    ("POST", "/v1/decide", b"[1, 2]", DECIDE),
    ("POST", "/v1/decide", orjson.dumps({**GOOD, "extra": 1}), DECIDE),
    ("POST", "/v1/decide", orjson.dumps({"placements": ["hero"]}), DECIDE),
    ("POST", "/v1/decide", orjson.dumps({**GOOD, "placements": ["nowhere"]}), DECIDE),
    ("POST", "/v1/decide", orjson.dumps({**GOOD, "context": {"channel": "fax"}}), DECIDE),
    ("POST", "/v1/decide", b'{"userId": "' + b"x" * 70_000 + b'"}', DECIDE),
    ("GET", "/v1/decide", b"", DECIDE),
    ("POST", "/v1/decide/", orjson.dumps(GOOD), DECIDE),
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
        key = decide_key(engine)
        codes = [client.post("/v1/decide", json=GOOD, headers=key).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    decider.close()
    engine.close()


def test_a_write_key_is_refused_with_the_fix_on_both_paths(
    clients: tuple[TestClient, TestClient, dict[str, str]],
) -> None:
    fast, route, keys = clients
    for client in (fast, route):
        refused = client.post("/v1/decide", json=GOOD, headers=WRITE)
        assert refused.status_code == 403
        assert refused.json()["message"].startswith("write keys only collect events")
        assert "--role decide" in refused.json()["hint"]
        allowed = client.post("/v1/decide", json=GOOD, headers={"Authorization": keys["decide"]})
        assert allowed.status_code == 200


def test_without_any_api_key_both_paths_answer_alike(tmp_path: Path) -> None:
    memory = {f"{part}_backend": "memory" for part in ("state", "event_store", "bus")}
    engine = build(Settings(**memory, write_keys="wk=web", admin_key=None))
    decider = Decider(engine, poll_interval=0.0)
    load(decider.store, BASE + RULES, tmp_path)
    with (
        TestClient(app_for(engine, decider, fast=True)) as fast,
        TestClient(app_for(engine, decider, fast=False)) as route,
    ):
        for headers in ({}, WRITE, {"Authorization": "Bearer pk_x_y"}):
            answers = [
                comparable(c.post("/v1/decide", json=GOOD, headers=headers)) for c in (fast, route)
            ]
            assert answers[0] == answers[1]
        assert answers[0][0] == 503
    decider.close()
    engine.close()
