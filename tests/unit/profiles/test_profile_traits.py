"""Traits with provenance, the conflict policy, and computed traits kept on every event."""

from __future__ import annotations

from typing import Any

from tests.unit.helpers import memory_engine

from personify.facade import Personify


def send(p: Personify, kind: str, **msg: Any) -> None:
    p.send(kind, msg)
    p.drain()


def test_newest_trait_wins_and_keeps_its_source_and_time() -> None:
    p, _ = memory_engine()
    send(p, "identify", userId="u1", traits={"plan": "pro"}, timestamp="2024-01-02T00:00:00Z")
    send(p, "identify", userId="u1", traits={"plan": "free"}, timestamp="2024-01-01T00:00:00Z")
    plan = p.profile_by("user_id", "u1")["traits"]["plan"]
    assert plan == {"value": "pro", "source": "python", "at": "2024-01-02T00:00:00.000000Z"}


def test_source_priority_overrides_newest_wins() -> None:
    p, _ = memory_engine(profiles={"trait_source_priority": {"plan": ["crm", "python"]}})
    p.send(
        "identify",
        {"userId": "u1", "traits": {"plan": "enterprise"}, "timestamp": "2024-01-01T00:00:00Z"},
        source="crm",
    )
    p.send(
        "identify",
        {"userId": "u1", "traits": {"plan": "free"}, "timestamp": "2024-02-01T00:00:00Z"},
        source="python",
    )
    p.drain()
    assert p.profile_by("user_id", "u1")["traits"]["plan"]["value"] == "enterprise"


def test_orders_revenue_and_average_order_value_follow_ecommerce_events() -> None:
    p, _ = memory_engine()
    send(
        p,
        "track",
        userId="u1",
        event="Order Completed",
        properties={"revenue": 30},
        timestamp="2024-04-01T10:00:00Z",
    )
    send(
        p,
        "track",
        userId="u1",
        event="Order Completed",
        properties={"products": [{"price": 10, "quantity": 2}, {"price": 5}]},
        timestamp="2024-04-20T10:00:00Z",
    )
    send(
        p,
        "track",
        userId="u1",
        event="Order Refunded",
        properties={"total": 5},
        timestamp="2024-04-21T10:00:00Z",
    )
    c = p.profile_by("user_id", "u1")["computed"]
    assert c["orders"] == 2 and c["refunds"] == 1
    assert c["revenue"] == 50  # 30 + 25 - 5
    assert c["average_order_value"] == 25
    assert c["last_order_at"] == "2024-04-20T10:00:00.000000Z"
    assert c["first_seen"] == "2024-04-01T10:00:00.000000Z"
    assert c["last_seen"] == "2024-04-21T10:00:00.000000Z"
    assert c["lifecycle_stage"] == "repeat_buyer"


def test_lifecycle_moves_to_lapsing_and_churned_as_time_passes() -> None:
    p, clock = memory_engine()
    send(
        p,
        "track",
        userId="u1",
        event="Order Completed",
        properties={"revenue": 1},
        timestamp="2024-05-01T00:00:00Z",
    )
    assert p.profile_by("user_id", "u1")["computed"]["lifecycle_stage"] == "first_time_buyer"
    clock.advance(days=100)
    p.stores.cache.clear()
    assert p.profile_by("user_id", "u1")["computed"]["lifecycle_stage"] == "lapsing"
    clock.advance(days=100)
    p.stores.cache.clear()
    assert p.profile_by("user_id", "u1")["computed"]["lifecycle_stage"] == "churned"


def test_thirty_minutes_of_inactivity_starts_a_new_session() -> None:
    p, _ = memory_engine()
    for ts in (
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:20:00Z",
        "2024-05-01T10:49:00Z",
        "2024-05-01T11:30:00Z",
    ):
        send(p, "page", anonymousId="a", name="x", timestamp=ts)
    pid = p.lookup("anonymous_id", "a")
    assert p.profile(pid)["computed"]["sessions"] == 2
    sessions = [e["session_id"] for e in reversed(p.timeline(pid))]
    assert sessions[0] == sessions[1] == sessions[2] != sessions[3]


def test_events_are_enriched_with_device_and_local_time() -> None:
    p, _ = memory_engine()
    ua = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    )
    send(
        p,
        "page",
        anonymousId="a",
        timestamp="2024-03-10T23:30:00Z",
        context={"userAgent": ua, "timezone": "Asia/Tokyo"},
    )
    event = p.timeline(p.lookup("anonymous_id", "a"))[0]
    assert event["device_type"] == "mobile"
    assert event["os"] == "iOS"
    assert event["local_hour"] == 8 and event["local_weekday"] == 0
