"""POST /v1/decide, the report and the definitions API: good paths and precise 4xx answers."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from tests.unit.decide.conftest import BASE, load
from tests.unit.helpers import decide_key, memory_engine

from personify.api.app import create_app
from personify.config import Settings
from personify.decide.service import Decider
from personify.facade import Personify
from personify.platform import build

WRITE = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}
ADMIN = {"Authorization": "Bearer admin"}
RULES = "rules:\n  hero:\n    - {id: vip, when: {traits.plan: pro}, show: winback}\n"


@pytest.fixture
def engine() -> Personify:
    return memory_engine()[0]


@pytest.fixture
def decider(engine: Personify, tmp_path: Path) -> Iterator[Decider]:
    d = Decider(engine, poll_interval=0.0)
    load(d.store, BASE + RULES, tmp_path)
    yield d
    d.close()


@pytest.fixture
def client(engine: Personify, decider: Decider) -> Iterator[TestClient]:
    app = create_app(engine)
    app.state.decider = decider
    with TestClient(app) as c:
        yield c


@pytest.fixture
def key(engine: Personify) -> dict[str, str]:
    return decide_key(engine)


def decide(client: TestClient, body: Any, headers: dict[str, str]) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/v1/decide", content=raw, headers=headers)


def test_known_and_unknown_people_get_decisions_with_reasons(
    client: TestClient, engine: Personify, key: dict[str, str]
) -> None:
    engine.identify(user_id="u1", traits={"plan": "pro", "first_name": "Ada"})
    engine.drain()
    body = {"userId": "u1", "context": {"channel": "web"}, "placements": ["hero"]}
    answer = decide(client, body, key)
    assert answer.status_code == 200, answer.text
    [d] = answer.json()["decisions"]
    assert d["content"]["key"] == "winback" and d["content"]["fields"] == {
        "headline": "We miss you"
    }
    assert (d["variant"], d["policy"], d["propensity"]) == ("web", "rules", 1.0)
    assert d["reasons"][0]["rule"] == "vip"
    stranger = decide(client, {"anonymousId": "a-9", "placements": ["hero"]}, key)
    stranger = stranger.json()["decisions"]
    assert stranger[0]["content"]["key"] == "welcome"
    assert [r["type"] for r in stranger[0]["reasons"]] == ["visitor", "fallback"]


def test_admin_key_may_decide_too(client: TestClient) -> None:
    assert decide(client, {"userId": "x", "placements": ["hero"]}, ADMIN).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic " + base64.b64encode(b"nope:").decode()}, 401),
        ({"Authorization": "Basic !!!"}, 401),
    ],
)
def test_decide_needs_a_decide_or_admin_key(
    client: TestClient, headers: dict[str, str], status: int
) -> None:
    answer = decide(client, {"userId": "x", "placements": ["hero"]}, headers)
    assert answer.status_code == status
    assert answer.json()["hint"]
    assert answer.headers["www-authenticate"] == "Bearer"


def test_a_write_key_only_collects_and_is_told_how_to_decide(client: TestClient) -> None:
    answer = decide(client, {"userId": "x", "placements": ["hero"]}, WRITE)
    assert answer.status_code == 403
    body = answer.json()
    assert body["message"].startswith("write keys only collect events")
    assert "personify keys create --role decide" in body["hint"]
    assert "Authorization: Bearer <key>" in body["hint"]
    # the same key still collects
    event = {"userId": "x", "event": "Viewed"}
    assert client.post("/v1/track", json=event, headers=WRITE).status_code == 200


def test_a_key_of_another_role_is_refused(client: TestClient, engine: Personify) -> None:
    assert engine.privacy is not None
    analyst = {"Authorization": f"Bearer {engine.privacy.keys.create('analyst', 'a').token}"}
    answer = decide(client, {"userId": "x", "placements": ["hero"]}, analyst)
    assert answer.status_code == 403
    assert "'decide'" in answer.json()["hint"]


def test_without_any_api_key_the_decision_api_says_how_to_make_one() -> None:
    memory = {f"{part}_backend": "memory" for part in ("state", "event_store", "bus")}
    engine = build(Settings(**memory, write_keys="wk=web", admin_key=None))
    with TestClient(create_app(engine)) as c:
        answer = decide(c, {"userId": "x", "placements": ["hero"]}, {})
    assert answer.status_code == 503
    assert "personify keys create --role decide" in answer.json()["hint"]


@pytest.mark.parametrize(
    ("body", "status", "fields"),
    [
        (b"{not json", 400, ["body"]),
        ([1, 2], 400, ["body"]),
        ({"placements": ["hero"]}, 400, ["userId"]),
        ({"userId": "", "placements": ["hero"]}, 400, ["userId"]),
        ({"userId": "u", "placements": []}, 400, ["placements"]),
        ({"userId": "u", "placements": "hero"}, 400, ["placements"]),
        ({"userId": "u", "placements": ["hero", "hero"]}, 400, ["placements[1]"]),
        ({"userId": "u", "placements": ["hero", "nope"]}, 400, ["placements[1]"]),
        ({"userId": "u", "placements": ["hero"], "context": []}, 400, ["context"]),
        (
            {
                "userId": "u",
                "placements": ["hero"],
                "context": {"channel": "fax", "local_hour": 25},
            },
            400,
            ["context.channel", "context.local_hour"],
        ),
        (
            {"userId": "u", "placements": ["hero"], "context": {"timezone": "Mars/Base"}},
            400,
            ["context.timezone"],
        ),
        (
            {"userId": "u", "placements": ["hero"], "context": {"cart_value": -1}},
            400,
            ["context.cart_value"],
        ),
        ({"userId": "u", "placements": ["hero"], "user": "typo"}, 400, ["user"]),
        ({"userId": "u", "placements": ["p"] * 21}, 400, ["placements"]),
        ({"userId": "u", "placements": ["hero"], "context": {"x": "y" * 70_000}}, 413, []),
    ],
)
def test_bad_input_gets_a_precise_4xx(
    client: TestClient, key: dict[str, str], body: Any, status: int, fields: list[str]
) -> None:
    answer = decide(client, body, key)
    assert answer.status_code == status, answer.text
    payload = answer.json()
    assert [p["field"] for p in payload.get("problems", [])] == fields
    assert payload["message"]


def test_definitions_api_validates_versions_diffs_and_rolls_back(
    client: TestClient, key: dict[str, str]
) -> None:
    url = "/v1/definitions/rule_set/hero"
    bad = client.put(
        url, content=orjson.dumps({"rules": [{"id": "x", "show": "ghost"}]}), headers=ADMIN
    )
    assert bad.status_code == 400
    assert [p["field"] for p in bad.json()["problems"]] == ["rules[0].show"]
    new_rules = {"rules": [{"id": "all", "show": "shoes"}]}
    put = client.put(url + "?message=shoes+for+all", content=orjson.dumps(new_rules), headers=ADMIN)
    assert put.status_code == 200 and put.json()["version"] == 2
    assert put.json()["actor"] == "admin-api" and put.json()["message"] == "shoes for all"
    first = decide(client, {"userId": "anyone", "placements": ["hero"]}, key).json()["decisions"][0]
    assert first["content"]["key"] == "shoes"  # no restart, no wait in this process
    diff = client.get(url + "/diff?a=1&b=2", headers=ADMIN).json()["changes"]
    assert '~ rules[0].id: "vip" -> "all"' in diff
    history = client.get(url + "/history", headers=ADMIN).json()["versions"]
    assert [v["version"] for v in history] == [1, 2]
    back = client.post(url + "/rollback?version=1", headers=ADMIN)
    assert back.status_code == 200 and back.json()["version"] == 3
    assert client.get(url + "?version=2", headers=ADMIN).json()["body"] == new_rules
    listed = client.get("/v1/definitions/content", headers=ADMIN).json()["items"]
    assert [i["key"] for i in listed] == ["bags", "cart", "shoes", "welcome", "winback"]
    gone = client.delete("/v1/definitions/rule_set/hero", headers=ADMIN)
    assert gone.json()["deleted"] is True
    assert client.get(url, headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/v1/definitions/widgets", 404),
        ("get", "/v1/definitions/content/ghost", 404),
        ("get", "/v1/definitions/content/welcome?version=0", 400),
        ("get", "/v1/definitions/content/welcome/diff?a=1", 400),
        ("post", "/v1/definitions/content/welcome/rollback?version=9", 404),
        ("delete", "/v1/definitions/content/ghost", 404),
        ("put", "/v1/definitions/content/bad%20key", 400),
    ],
)
def test_definitions_api_errors(client: TestClient, method: str, path: str, status: int) -> None:
    body = {"content": orjson.dumps({"variants": {"web": {"a": "b"}}})} if method == "put" else {}
    answer = getattr(client, method)(path, headers=ADMIN, **body)
    assert answer.status_code == status, answer.text
    assert answer.json()["message"]


def test_definitions_api_is_admin_only(client: TestClient) -> None:
    assert client.get("/v1/definitions/content", headers=WRITE).status_code == 401


def test_a_click_with_the_decision_id_shows_in_the_report(
    client: TestClient, engine: Personify, decider: Decider, key: dict[str, str]
) -> None:
    engine.processor.add_observer(decider.attributor)  # type: ignore[attr-defined]
    engine.identify(user_id="u1", traits={"plan": "pro"})
    engine.drain()
    [d] = decide(client, {"userId": "u1", "placements": ["hero"]}, key).json()["decisions"]
    for event, props in (
        ("Content Viewed", {}),
        ("Content Clicked", {}),
        ("Order Completed", {"revenue": 42.0, "order_id": "o1"}),
    ):
        message = {
            "userId": "u1",
            "event": event,
            "properties": {"decision_id": d["decision_id"], **props},
        }
        assert (
            client.post("/v1/track", content=orjson.dumps(message), headers=WRITE).status_code
            == 200
        )
    engine.drain()
    report = client.get("/v1/decide/report", headers=ADMIN)
    assert report.status_code == 200
    [row] = report.json()["content"]
    assert row == {
        "placement": "hero",
        "content": "winback",
        "impressions": 1,
        "views": 1,
        "clicks": 1,
        "conversions": 1,
        "revenue": 42.0,
        "ctr": 1.0,
        "conversion_rate": 1.0,
    }
    assert client.get("/v1/decide/report?since=yesterday", headers=ADMIN).status_code == 400
    # a time with no UTC date (year 1 at +01:00) is a 400 too, not a 500
    late = client.get("/v1/decide/report?since=0001-01-01T00:00:00%2B01:00", headers=ADMIN)
    assert late.status_code == 400 and late.json()["problems"][0]["field"] == "since"
    assert client.get("/v1/decide/report", headers=WRITE).status_code == 401


def test_the_app_builds_its_decider_on_first_use(tmp_path: Path) -> None:
    engine, _ = memory_engine()
    load(engine.stores.definitions, BASE, tmp_path)
    app = create_app(engine)
    with TestClient(app) as c:
        answer = decide(c, {"anonymousId": "a", "placements": ["hero"]}, decide_key(engine))
        assert answer.status_code == 200, answer.text
        assert answer.json()["decisions"][0]["content"]["key"] == "welcome"
        assert isinstance(app.state.decider, Decider)
        assert app.state.decider.store is engine.stores.definitions
