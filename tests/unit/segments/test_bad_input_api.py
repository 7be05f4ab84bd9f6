"""Bad input to the segments API is refused up front (400/409), never a 500 or a stuck engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import T0

from personify.api.app import create_app
from personify.clock import FixedClock
from personify.config import Settings
from personify.facade import Personify
from personify.platform import build
from personify.profiles.records import iso
from personify.segments.behavior import parse_duration
from personify.segments.definition import compile_segment

ADMIN = {"Authorization": "Bearer admin"}
TOO_BIG = 2**70
LIMIT = "36500d (100 years)"
ADDED = {
    "key": "cart_abandoner",
    "name": "Added",
    "condition": {"$event": {"name": "Product Added"}},
}
BUYERS = {"key": "high_value", "name": "Buyers", "condition": {"computed.orders": {"$gte": 1}}}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[Personify, FixedClock]]:
    """SQLite state, as in production: its integers stop at 2**63 - 1."""
    clock = FixedClock(T0)
    settings = Settings(
        data_dir=str(tmp_path / "data"),
        state_backend="sqlite",
        event_store_backend="memory",
        bus_backend="memory",
        write_keys="wk=web",
        admin_key="admin",
    )
    p = build(settings, clock)
    for user in ("a", "b"):
        p.track(user_id=user, event="Product Added", timestamp=iso(T0))
        p.track(user_id=user, event="Order Completed", timestamp=iso(T0))
    p.drain()
    yield p, clock
    p.close()


@pytest.fixture
def client(engine: tuple[Personify, FixedClock]) -> Iterator[TestClient]:
    with TestClient(create_app(engine[0])) as c:
        for body in (ADDED, BUYERS):
            assert c.post("/v1/segments", json=body, headers=ADMIN).status_code == 201
        yield c


def _refused(r: Any, *needles: str, status: int = 400) -> None:
    assert r.status_code == status, r.text
    text = r.text
    for needle in needles:
        assert needle in text, text


# -- 1. durations have an upper bound --------------------------------------------------------
@pytest.mark.parametrize("text", ["36501d", "5215w", "9999999d", "99999999999d", "9" * 5000 + "s"])
def test_parse_duration_refuses_more_than_100_years(text: str) -> None:
    with pytest.raises(ValueError, match=r"durations run up to 36500d \(100 years\)"):
        parse_duration(text)


def test_parse_duration_accepts_exactly_100_years() -> None:
    assert parse_duration("36500d") == timedelta(days=36_500)
    assert parse_duration(f"{36_500 * 86_400}s") == timedelta(days=36_500)


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ({"$event": {"name": "X", "within": "9999999d"}}, "condition.$event.within"),
        ({"$event": {"name": "X", "last": {"$olderThan": "9999999d"}}}, "$olderThan"),
        ({"$event": {"name": "X", "first": {"$newerThan": "99999999999d"}}}, "$newerThan"),
        (
            {
                "$sequence": {
                    "first": {"name": "A"},
                    "notFollowedBy": {"name": "B"},
                    "within": "99999999999d",
                }
            },
            "condition.$sequence.within",
        ),
        ({"computed.last_seen": {"$olderThan": "9999999d"}}, "computed.last_seen.$olderThan"),
        ({"computed.first_seen": {"$newerThan": "99999999999d"}}, "computed.first_seen.$newerThan"),
    ],
)
def test_every_duration_in_a_condition_is_bounded(
    client: TestClient, condition: dict[str, Any], field: str
) -> None:
    body = {"key": "huge_window", "condition": condition}
    _refused(client.post("/v1/segments", json=body, headers=ADMIN), field, LIMIT)
    _refused(client.post("/v1/segments/dry-run", json=body, headers=ADMIN), field, LIMIT)
    assert client.get("/v1/segments/huge_window", headers=ADMIN).status_code == 404


def test_template_durations_are_bounded(client: TestClient) -> None:
    r = client.post(
        "/v1/segments/from-template/high_value",
        json={"key": "hv_huge", "params": {"active_within": "9999999d"}},
        headers=ADMIN,
    )
    _refused(r, "$newerThan", LIMIT)


def test_size_every_is_bounded(client: TestClient) -> None:
    r = client.get(
        "/v1/segments/cart_abandoner/size", params={"every": "9999999999d"}, headers=ADMIN
    )
    _refused(r, "every", LIMIT)


def test_a_window_of_100_years_keeps_the_engine_going(
    engine: tuple[Personify, FixedClock], client: TestClient
) -> None:
    p, clock = engine
    body = {
        "key": "long_window",
        "condition": {"$event": {"name": "Order Completed", "within": "36500d"}},
    }
    assert client.post("/v1/segments", json=body, headers=ADMIN).json()["size"] == 2
    clock.advance(days=1)
    p.track(user_id="c", event="Order Completed", timestamp=iso(clock.now()))
    p.drain()
    assert client.get("/v1/segments/long_window", headers=ADMIN).json()["size"] == 3


def test_a_stored_body_over_the_limit_no_longer_compiles() -> None:
    body = {"key": "old", "condition": {"$event": {"name": "X", "within": "9999999d"}}}
    with pytest.raises(Exception, match="36500d"):
        compile_segment(body)


# -- 2. integers beyond SQLite's range --------------------------------------------------------
def test_changes_after_beyond_sqlite_is_400(client: TestClient) -> None:
    r = client.get("/v1/segments/changes", params={"after": 2**63}, headers=ADMIN)
    _refused(r, "query.after", str(2**63 - 1))
    assert client.get(
        "/v1/segments/changes", params={"after": 2**63 - 1}, headers=ADMIN
    ).json() == {
        "changes": [],
        "next": 2**63 - 1,
    }


def test_members_offset_beyond_sqlite_is_400(client: TestClient) -> None:
    r = client.get("/v1/segments/cart_abandoner/members", params={"offset": TOO_BIG}, headers=ADMIN)
    _refused(r, "query.offset")
    last = client.get(
        "/v1/segments/cart_abandoner/members", params={"offset": 2**63 - 1}, headers=ADMIN
    )
    assert last.status_code == 200 and last.json()["members"] == []


def test_rollback_version_beyond_sqlite_is_400(client: TestClient) -> None:
    r = client.post(
        "/v1/segments/cart_abandoner/rollback", json={"version": TOO_BIG}, headers=ADMIN
    )
    _refused(r, "body.version")


# -- 4. freeze never overwrites; an empty rebuild list is refused ------------------------------
@pytest.mark.parametrize("into", ["high_value", "cart_abandoner"])
def test_freeze_into_an_existing_segment_is_409(client: TestClient, into: str) -> None:
    before = client.get(f"/v1/segments/{into}", headers=ADMIN).json()
    r = client.post("/v1/segments/cart_abandoner/freeze", json={"into": into}, headers=ADMIN)
    _refused(r, into, "exists", status=409)
    assert "hint" in r.json()
    after = client.get(f"/v1/segments/{into}", headers=ADMIN).json()
    assert after["version"] == before["version"] and after["kind"] == "dynamic"


def test_freeze_into_a_new_key_still_works(client: TestClient) -> None:
    r = client.post("/v1/segments/cart_abandoner/freeze", json={"into": "carts_may"}, headers=ADMIN)
    assert r.status_code == 201 and r.json()["kind"] == "static", r.text


def test_rebuild_with_an_empty_key_list_is_400(client: TestClient) -> None:
    _refused(client.post("/v1/segments/rebuild", json={"keys": []}, headers=ADMIN), "keys")
    for body in ({}, {"keys": None}):
        r = client.post("/v1/segments/rebuild", json=body, headers=ADMIN)
        assert r.status_code == 200 and set(r.json()["sizes"]) == {"cart_abandoner", "high_value"}
    one = client.post("/v1/segments/rebuild", json={"keys": ["high_value"]}, headers=ADMIN)
    assert one.status_code == 200 and set(one.json()["sizes"]) == {"high_value"}


# -- 5. from-template refuses unknown body fields --------------------------------------------
def test_from_template_refuses_unknown_fields(client: TestClient) -> None:
    r = client.post(
        "/v1/segments/from-template/high_value", json={"key": "hv5", "extra": 1}, headers=ADMIN
    )
    _refused(r, "body.extra")
    assert client.get("/v1/segments/hv5", headers=ADMIN).status_code == 404


def test_from_template_still_takes_key_params_or_nothing(client: TestClient) -> None:
    r = client.post(
        "/v1/segments/from-template/new_visitor",
        json={"key": "nv", "params": {"first_seen_within": "3d"}},
        headers=ADMIN,
    )
    assert r.status_code == 201 and r.json()["key"] == "nv", r.text
    bare = client.post("/v1/segments/from-template/lapsing_customer", headers=ADMIN)
    assert bare.status_code == 201 and bare.json()["key"] == "lapsing_customer", bare.text


# -- noticed on the way: profile times a duration cannot be added to ---------------------------
def test_relative_time_on_odd_profile_times_does_not_stop_the_engine(
    engine: tuple[Personify, FixedClock], client: TestClient
) -> None:
    """A trait near year 9999 (overflows when the age is added) or without a time zone (cannot
    be compared with now) used to fail every later processor step."""
    p, _ = engine
    body = {"key": "renew", "condition": {"traits.renew_at": {"$olderThan": "7d"}}}
    assert client.post("/v1/segments", json=body, headers=ADMIN).status_code == 201
    for user, when in (("x", "9999-12-31T00:00:00+00:00"), ("y", "2024-01-01"), ("z", "2023")):
        p.identify(user_id=user, traits={"renew_at": when}, timestamp=iso(T0))
    p.identify(user_id="w", traits={"renew_at": "2023-01-01T00:00:00Z"}, timestamp=iso(T0))
    p.drain()
    assert client.get("/v1/segments/renew", headers=ADMIN).json()["size"] == 2  # y and w
