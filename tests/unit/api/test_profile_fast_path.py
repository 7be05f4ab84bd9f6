"""``GET /v1/profiles/lookup`` and ``GET /v1/profiles/{profile_id}`` are answered by an ASGI
fast path; its answers and audit records must be exactly those of the FastAPI routes it
stands in for, good and bad requests alike, and the outer middleware (the rate limit) must
still apply to it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine

from personify.api.app import create_app
from personify.api.profiles import ProfileReadFastPath
from personify.config import Settings
from personify.facade import Personify
from personify.platform import build

WRITE = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}


def app_for(engine: Personify, *, fast: bool) -> FastAPI:
    app = create_app(engine, own_engine=False)
    if not fast:  # the routes alone, as FastAPI serves them
        app.user_middleware = [m for m in app.user_middleware if m.cls is not ProfileReadFastPath]
    return app


@pytest.fixture
def engine() -> Iterator[Personify]:
    p, _ = memory_engine()
    p.identify(user_id="u1", traits={"email": "Ada@Example.com", "plan": "pro"})
    p.track(user_id="u1", event="Order Completed", properties={"revenue": 30})
    p.page(anonymous_id="anon-2", name="Home")
    p.identify(user_id="u3", traits={"phone": "+1 415 555 2671"})
    p.track(anonymous_id="anon-4", event="Product Viewed")
    p.alias(user_id="u3", previous_id="anon-4")  # anon-4's profile is merged into u3's
    p.drain()
    yield p
    p.close()


@pytest.fixture
def clients(engine: Personify) -> Iterator[tuple[TestClient, TestClient, dict[str, str]]]:
    assert engine.privacy is not None
    keys = {
        role: f"Bearer {engine.privacy.keys.create(role, role).token}"
        for role in ("analyst", "marketer", "decide", "admin")
    }
    with (
        TestClient(app_for(engine, fast=True)) as fast,
        TestClient(app_for(engine, fast=False)) as route,
    ):
        yield fast, route, keys


def comparable(response: Any) -> tuple[int, dict[str, str], Any]:
    headers = dict(response.headers.items())
    try:
        return response.status_code, headers, response.json()
    except ValueError:
        return response.status_code, headers, response.text


def ids(engine: Personify) -> dict[str, str]:
    merged = engine.lookup("user_id", "u3")
    return {
        "{u1}": engine.lookup("user_id", "u1"),
        "{anon2}": engine.lookup("anonymous_id", "anon-2"),
        "{u3}": merged,
        # the id anon-4's profile had before the alias merged it into u3's
        "{merged}": next(i for i in engine.profile(merged)["merged_from"]),
    }


ANALYST = {"Authorization": "analyst-key"}
CASES: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/v1/profiles/lookup?user_id=u1", ANALYST),
    ("GET", "/v1/profiles/lookup?email=%20ADA@example.COM", ANALYST),
    ("GET", "/v1/profiles/lookup?anonymous_id=anon-2", ANALYST),
    ("GET", "/v1/profiles/lookup?phone=%2B14155552671", ANALYST),
    ("GET", "/v1/profiles/lookup?anonymous_id=anon-4", ANALYST),  # merged: the survivor
    ("GET", "/v1/profiles/lookup?user_id=nobody", ANALYST),
    ("GET", "/v1/profiles/lookup?phone=12345", ANALYST),
    ("GET", "/v1/profiles/lookup?email=not-an-email", ANALYST),
    ("GET", "/v1/profiles/lookup", ANALYST),
    ("GET", "/v1/profiles/lookup?user_id=", ANALYST),
    ("GET", "/v1/profiles/lookup?user_id=u1&email=ada@example.com", ANALYST),
    ("GET", "/v1/profiles/lookup?user_id=nobody&user_id=u1", ANALYST),  # the last one wins
    ("GET", "/v1/profiles/lookup?userId=u1", ANALYST),
    ("GET", "/v1/profiles/{u1}", ANALYST),
    ("GET", "/v1/profiles/{anon2}", ANALYST),
    ("GET", "/v1/profiles/{merged}", ANALYST),
    ("GET", "/v1/profiles/p_unknown", ANALYST),
    ("GET", "/v1/profiles/p%20with%20space", ANALYST),
    ("GET", "/v1/profiles/lookup?user_id=u1", {"Authorization": "admin-key"}),
    ("GET", "/v1/profiles/lookup?user_id=u1", {"Authorization": "Bearer admin"}),
    ("GET", "/v1/profiles/{u1}", {"Authorization": "marketer-key"}),
    ("GET", "/v1/profiles/lookup?user_id=u1", {"Authorization": "decide-key"}),
    ("GET", "/v1/profiles/lookup?user_id=u1", {"Authorization": "Bearer pk_x_wrong"}),
    ("GET", "/v1/profiles/{u1}", {"Authorization": "Bearer"}),
    ("GET", "/v1/profiles/lookup?user_id=u1", WRITE),
    ("GET", "/v1/profiles/lookup?user_id=u1", {}),
    # not the fast path's: these go on to the routes on both apps
    ("GET", "/v1/profiles/lookup/", ANALYST),
    ("GET", "/v1/profiles/", ANALYST),
    ("GET", "/v1/profiles/{u1}/events", ANALYST),
    ("HEAD", "/v1/profiles/{u1}", ANALYST),
    ("POST", "/v1/profiles/lookup?user_id=u1", ANALYST),
    ("DELETE", "/v1/profiles/{u1}", ANALYST),
]


def audit_tail(engine: Personify, after: int) -> list[tuple[str, str, str]]:
    assert engine.privacy is not None
    records = engine.privacy.audit.query(after=after, limit=1000)
    return [(r["actor"], r["action"], r["target"]) for r in records]


def last_audit_id(engine: Personify) -> int:
    assert engine.privacy is not None
    records = engine.privacy.audit.query(limit=1000)
    return int(records[-1]["id"]) if records else 0


@pytest.mark.parametrize(("method", "path", "headers"), CASES)
def test_the_fast_path_answers_and_audits_exactly_as_the_routes(
    engine: Personify,
    clients: tuple[TestClient, TestClient, dict[str, str]],
    method: str,
    path: str,
    headers: dict[str, str],
) -> None:
    fast, route, keys = clients
    for name, value in ids(engine).items():
        path = path.replace(name, value)
    if headers.get("Authorization", "").endswith("-key"):
        headers = {"Authorization": keys[headers["Authorization"].removesuffix("-key")]}
    answers, audits = [], []
    for client in (fast, route):
        mark = last_audit_id(engine)
        answers.append(comparable(client.request(method, path, headers=headers)))
        audits.append(audit_tail(engine, mark))
    assert answers[0] == answers[1]
    assert audits[0] == audits[1]


def test_a_profile_read_is_answered_and_audited_by_the_fast_path(
    engine: Personify, clients: tuple[TestClient, TestClient, dict[str, str]]
) -> None:
    fast, _, keys = clients
    mark = last_audit_id(engine)
    found = fast.get(
        "/v1/profiles/lookup?email=ada@example.com", headers={"Authorization": keys["analyst"]}
    )
    assert found.status_code == 200
    body = found.json()
    assert body["traits"]["plan"]["value"] == "pro"
    assert body["computed"]["revenue"] == 30.0
    ((actor, action, target),) = audit_tail(engine, mark)
    assert actor.startswith("key:") and action == "GET /v1/profiles/lookup"
    assert target == "/v1/profiles/lookup"
    pid = body["profile_id"]
    again = fast.get(f"/v1/profiles/{pid}", headers={"Authorization": keys["analyst"]})
    assert again.json()["profile_id"] == pid
    assert audit_tail(engine, mark)[-1][1:] == (
        "GET /v1/profiles/{profile_id}",
        f"/v1/profiles/{pid}",
    )


def test_an_unexpected_failure_gets_the_same_500_on_both_paths(
    engine: Personify, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fast path sits inside the outer middleware: the app's 500 handler still answers
    def broken(*_: Any, **__: Any) -> dict[str, Any]:
        raise RuntimeError("the store is gone")

    monkeypatch.setattr(engine, "profile_by", broken)
    answers = []
    for fast in (True, False):
        with TestClient(app_for(engine, fast=fast), raise_server_exceptions=False) as client:
            answer = client.get(
                "/v1/profiles/lookup?user_id=u1", headers={"Authorization": "Bearer admin"}
            )
            answers.append(comparable(answer))
    assert answers[0] == answers[1]
    assert answers[0][0] == 500


def test_without_any_api_key_both_paths_answer_alike() -> None:
    memory = {f"{part}_backend": "memory" for part in ("state", "event_store", "bus")}
    engine = build(Settings(**memory, write_keys="wk=web", admin_key=None))
    with (
        TestClient(app_for(engine, fast=True)) as fast,
        TestClient(app_for(engine, fast=False)) as route,
    ):
        for headers in ({}, WRITE, {"Authorization": "Bearer pk_x_y"}):
            answers = [
                comparable(c.get("/v1/profiles/lookup?user_id=u1", headers=headers))
                for c in (fast, route)
            ]
            assert answers[0] == answers[1]
        assert answers[0][0] == 503
    engine.close()
