"""Segments over HTTP: save (versioned), dry-run, members and export, size, bad input."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import T0, memory_engine

from personify.api.app import create_app
from personify.clock import FixedClock
from personify.facade import Personify
from personify.profiles.records import iso

ADMIN = {"Authorization": "Bearer admin"}
BUYERS = {"key": "buyers", "name": "Buyers", "condition": {"computed.orders": {"$gte": 1}}}


@pytest.fixture
def engine() -> tuple[Personify, FixedClock]:
    p, clock = memory_engine()
    for i, user in enumerate(("a", "b", "c")):
        p.identify(user_id=user, traits={"email": f"{user}@example.com"}, timestamp=iso(T0))
        if i < 2:
            p.track(
                user_id=user,
                event="Order Completed",
                properties={"revenue": 10 * (i + 1)},
                timestamp=iso(T0 + timedelta(minutes=1)),
            )
    p.drain()
    return p, clock


@pytest.fixture
def client(engine: tuple[Personify, FixedClock]) -> Iterator[TestClient]:
    with TestClient(create_app(engine[0])) as c:
        yield c


def test_admin_key_is_required(client: TestClient) -> None:
    assert client.get("/v1/segments").status_code == 401
    assert client.post("/v1/segments", json=BUYERS).status_code == 401


def test_save_list_get_version_and_rollback(client: TestClient) -> None:
    created = client.post("/v1/segments", json=BUYERS, headers=ADMIN)
    assert created.status_code == 201, created.text
    assert created.json()["size"] == 2 and created.json()["version"] == 1
    bigger = {**BUYERS, "condition": {"computed.revenue": {"$gte": 15}}}
    updated = client.put("/v1/segments/buyers", json=bigger, headers=ADMIN).json()
    assert updated["version"] == 2 and updated["size"] == 1
    listed = client.get("/v1/segments", headers=ADMIN).json()["segments"]
    assert [(s["key"], s["size"], s["version"]) for s in listed] == [("buyers", 1, 2)]
    versions = client.get("/v1/segments/buyers/versions", headers=ADMIN).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2] and versions[0]["actor"] == "api"
    back = client.post("/v1/segments/buyers/rollback", json={"version": 1}, headers=ADMIN).json()
    assert back["version"] == 3 and back["size"] == 2


def test_freeze_keeps_todays_members(client: TestClient) -> None:
    client.post("/v1/segments", json=BUYERS, headers=ADMIN)
    frozen = client.post("/v1/segments/buyers/freeze", json={"into": "buyers_nov"}, headers=ADMIN)
    assert frozen.status_code == 201, frozen.text
    assert frozen.json()["kind"] == "static" and frozen.json()["size"] == 2
    empty = {"key": "nobody", "name": "Nobody", "condition": {"computed.orders": {"$gt": 99}}}
    client.post("/v1/segments", json=empty, headers=ADMIN)
    r = client.post("/v1/segments/nobody/freeze", json={"into": "x"}, headers=ADMIN)
    assert r.status_code == 400 and "no members" in r.json()["message"]


def test_dry_run_saves_nothing(client: TestClient) -> None:
    r = client.post(
        "/v1/segments/dry-run", json={"condition": {"computed.orders": 0}}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 1 and len(r.json()["sample"]) == 1
    assert client.get("/v1/segments", headers=ADMIN).json()["segments"] == []


def test_members_json_csv_and_parquet(client: TestClient) -> None:
    client.post("/v1/segments", json=BUYERS, headers=ADMIN)
    page = client.get("/v1/segments/buyers/members", headers=ADMIN).json()
    assert page["total"] == 2 and len(page["members"]) == 2
    csv_text = client.get("/v1/segments/buyers/members?format=csv", headers=ADMIN).text
    lines = csv_text.strip().splitlines()
    assert lines[0] == "profile_id,entered_at,user_id,email,anonymous_id"
    assert sorted(line.split(",")[2] for line in lines[1:]) == ["a", "b"]
    raw = client.get("/v1/segments/buyers/members?format=parquet", headers=ADMIN).content
    table = pq.read_table(io.BytesIO(raw))
    assert sorted(table.column("email").to_pylist()) == ["a@example.com", "b@example.com"]


def test_size_over_time_follows_history(
    client: TestClient, engine: tuple[Personify, FixedClock]
) -> None:
    p, clock = engine
    client.post("/v1/segments", json=BUYERS, headers=ADMIN)  # 2 members at T0
    clock.advance(days=1)
    p.track(
        user_id="c", event="Order Completed", properties={"revenue": 1}, timestamp=iso(clock.now())
    )
    p.drain()
    clock.advance(days=1)
    points = client.get(
        "/v1/segments/buyers/size", params={"start": iso(T0), "every": "1d"}, headers=ADMIN
    ).json()["points"]
    assert [pt["size"] for pt in points] == [2, 3, 3]


def test_templates_can_be_listed_and_used(client: TestClient) -> None:
    names = [
        t["name"] for t in client.get("/v1/segments/templates", headers=ADMIN).json()["templates"]
    ]
    assert names == [
        "high_value",
        "cart_abandoner",
        "new_visitor",
        "lapsing_customer",
        "frequent_browser",
    ]
    r = client.post(
        "/v1/segments/from-template/lapsing_customer",
        json={"key": "lapsed_60", "params": {"inactive_for": "60d"}},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    assert r.json()["key"] == "lapsed_60"
    bad = client.post(
        "/v1/segments/from-template/lapsing_customer", json={"params": {"days": 3}}, headers=ADMIN
    )
    assert bad.status_code == 400 and "days" in bad.json()["message"]
    assert client.post("/v1/segments/from-template/nope", json={}, headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "Bad Key", "condition": {}}, "key"),
        ({"key": "x", "condition": {"computed.orderz": 1}}, "condition.computed.orderz"),
        (
            {"key": "x", "condition": {"$event": {"name": "A", "within": "7 days"}}},
            "condition.$event.within",
        ),
        ({"key": "x", "kind": "static"}, "members"),
        ({"key": "x", "kind": "sometimes", "condition": {}}, "kind"),
        ({"key": "x"}, "condition"),
        (
            {"key": "x", "condition": {"segments": {"$elemMatch": {"$eq": "ghost"}}}},
            "condition.segments",
        ),
    ],
)
def test_bad_segments_get_400_with_pointers(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    r = client.post("/v1/segments", json=body, headers=ADMIN)
    assert r.status_code == 400, r.text
    assert field in [p["field"] for p in r.json()["problems"]], r.json()
    assert client.get("/v1/segments", headers=ADMIN).json()["segments"] == []


def test_unknown_segment_is_404_with_hint(client: TestClient) -> None:
    r = client.get("/v1/segments/nope", headers=ADMIN)
    assert r.status_code == 404 and r.json()["message"]


def test_changes_stream_pages(client: TestClient) -> None:
    client.post("/v1/segments", json=BUYERS, headers=ADMIN)
    first = client.get("/v1/segments/changes", params={"limit": 1}, headers=ADMIN).json()
    assert len(first["changes"]) == 1 and first["changes"][0]["change"] == "entered"
    rest = client.get("/v1/segments/changes", params={"after": first["next"]}, headers=ADMIN).json()
    assert len(rest["changes"]) == 1
