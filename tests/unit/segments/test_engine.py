"""The segment engine keeps memberships current as events arrive and as time passes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.helpers import T0, memory_engine

from personify.facade import Personify
from personify.profiles.records import iso

CART_ABANDONER = {
    "key": "cart_abandoner",
    "name": "Cart abandoners",
    "condition": {
        "$sequence": {
            "first": {"name": "Product Added"},
            "notFollowedBy": {"name": "Order Completed"},
            "within": "24h",
        }
    },
}
VIEWED_THRICE = {
    "key": "sku1_fan",
    "name": "Viewed sku-1 three times in 7 days without buying",
    "condition": {
        "$and": [
            {
                "$event": {
                    "name": "Product Viewed",
                    "where": {"properties.product_id": "sku-1"},
                    "within": "7d",
                    "count": {"$gte": 3},
                }
            },
            {"$event": {"name": "Order Completed", "within": "7d", "count": 0}},
        ]
    },
}
BIG_SPENDER = {
    "key": "big_spender",
    "name": "Spent 100 or more in 30 days",
    "condition": {
        "$event": {
            "name": "Order Completed",
            "within": "30d",
            "sum": {"property": "revenue", "value": {"$gte": 100}},
        }
    },
}
INACTIVE = {
    "key": "inactive",
    "name": "No visit in 14 days",
    "condition": {"computed.last_seen": {"$olderThan": "14d"}},
}


def _engine(*segments: dict[str, Any]) -> tuple[Personify, Any]:
    p, clock = memory_engine()
    for body in segments:
        p.stores.definitions.put("segment", body["key"], body, actor="test")
    assert p.segment_engine is not None
    p.segment_engine.reload()
    return p, clock


def _track(p: Personify, user: str, event: str, at: Any, **props: Any) -> None:
    p.track(user_id=user, event=event, properties=props, timestamp=iso(at))


def _segments(p: Personify, user: str) -> list[str]:
    return list(p.profile_by("user_id", user)["segments"])


def _tick(p: Personify) -> int:
    assert p.segment_engine is not None
    return p.segment_engine.tick()


def test_cart_abandoner_enters_when_24_hours_pass_without_an_order() -> None:
    p, clock = _engine(CART_ABANDONER)
    _track(p, "u1", "Product Added", T0, product_id="sku-1")
    _track(p, "u2", "Product Added", T0, product_id="sku-2")
    _track(p, "u2", "Order Completed", T0 + timedelta(hours=2), revenue=30)
    p.drain()
    assert _segments(p, "u1") == [] and _segments(p, "u2") == []

    clock.advance(hours=23, minutes=59)
    assert _tick(p) == 0  # nothing is due yet
    assert _segments(p, "u1") == []

    clock.advance(minutes=2)  # no new event: time alone makes u1 an abandoner
    assert _tick(p) == 1
    assert _segments(p, "u1") == ["cart_abandoner"]
    assert _segments(p, "u2") == []

    # Buying later takes u1 out again, and history keeps the stay.
    _track(p, "u1", "Order Completed", clock.now(), revenue=10)
    p.drain()
    assert _segments(p, "u1") == []
    pid = p.lookup("user_id", "u1")
    [stay] = p.stores.segments.history(pid)
    assert stay["segment"] == "cart_abandoner" and stay["exited_at"] is not None
    changes = [(c["segment"], c["change"]) for c in p.stores.segments.changes()]
    assert changes == [("cart_abandoner", "entered"), ("cart_abandoner", "exited")]


def test_windowed_count_with_filter_and_absence_expires_with_time() -> None:
    p, clock = _engine(VIEWED_THRICE)
    for hours in (0, 1, 2):
        _track(p, "fan", "Product Viewed", T0 + timedelta(hours=hours), product_id="sku-1")
        _track(p, "other", "Product Viewed", T0 + timedelta(hours=hours), product_id="sku-2")
    clock.set(T0 + timedelta(hours=3))
    p.drain()
    assert _segments(p, "fan") == ["sku1_fan"]
    assert _segments(p, "other") == []

    # The first view leaves the 7-day window after 7 days: the count drops to 2.
    clock.set(T0 + timedelta(days=7, minutes=1))
    assert _tick(p) >= 1
    assert _segments(p, "fan") == []


def test_buying_removes_the_viewer_at_once() -> None:
    p, clock = _engine(VIEWED_THRICE)
    for hours in (0, 1, 2):
        _track(p, "fan", "Product Viewed", T0 + timedelta(hours=hours), product_id="sku-1")
    clock.set(T0 + timedelta(hours=3))
    p.drain()
    assert _segments(p, "fan") == ["sku1_fan"]
    _track(p, "fan", "Order Completed", T0 + timedelta(hours=3), revenue=5)
    p.drain()
    assert _segments(p, "fan") == []


def test_sum_in_window() -> None:
    p, clock = _engine(BIG_SPENDER)
    clock.set(T0 + timedelta(days=1))
    _track(p, "a", "Order Completed", T0, revenue=60)
    _track(p, "a", "Order Completed", T0 + timedelta(hours=5), revenue=50)
    _track(p, "b", "Order Completed", T0, revenue=99.5)
    p.drain()
    assert _segments(p, "a") == ["big_spender"]
    assert _segments(p, "b") == []
    clock.set(T0 + timedelta(days=30, hours=1))  # the 60 leaves the window
    _tick(p)
    assert _segments(p, "a") == []


def test_relative_time_on_a_profile_field() -> None:
    p, clock = _engine(INACTIVE)
    _track(p, "sleepy", "Page Viewed", T0)
    p.drain()
    assert _segments(p, "sleepy") == []
    clock.advance(days=14, seconds=1)
    _tick(p)
    assert _segments(p, "sleepy") == ["inactive"]
    _track(p, "sleepy", "Page Viewed", clock.now())
    p.drain()
    assert _segments(p, "sleepy") == []


def test_a_new_segment_is_built_from_history_and_a_deleted_one_empties() -> None:
    p, clock = _engine()
    for hours in (0, 1, 2):
        _track(p, "fan", "Product Viewed", T0 + timedelta(hours=hours), product_id="sku-1")
    clock.set(T0 + timedelta(hours=3))
    p.drain()
    p.stores.definitions.put("segment", "sku1_fan", VIEWED_THRICE, actor="test")
    assert p.segment_engine is not None
    assert p.segment_engine.reload() == ["sku1_fan"]
    assert _segments(p, "fan") == ["sku1_fan"]
    # Further events count once: history replay and live processing never double count.
    _track(p, "fan", "Product Viewed", T0 + timedelta(hours=3), product_id="sku-1")
    p.drain()
    pid = p.lookup("user_id", "fan")
    [clause] = [
        c
        for c in p.segment_engine.segments["sku1_fan"].clauses.values()
        if c.spec.get("name") == "Product Viewed"
    ]
    states = p.stores.segments.states([pid], [clause.id])
    assert len(states[(pid, clause.id)]["w"]) == 4
    p.stores.definitions.delete("segment", "sku1_fan", actor="test")
    p.segment_engine.reload()
    assert _segments(p, "fan") == []


def test_segments_can_use_other_segments_and_static_lists() -> None:
    vip = {"key": "vip", "name": "VIP", "kind": "static", "members": {"user_id": ["u1"]}}
    vip_buyers = {
        "key": "vip_buyers",
        "name": "VIPs who bought",
        "condition": {
            "segments": {"$elemMatch": {"$eq": "vip"}},
            "computed.orders": {"$gte": 1},
        },
    }
    p, _ = _engine(vip, vip_buyers)
    _track(p, "u1", "Order Completed", T0, revenue=1)
    _track(p, "u2", "Order Completed", T0, revenue=1)
    p.drain()
    assert _segments(p, "u1") == ["vip", "vip_buyers"]
    assert _segments(p, "u2") == []


def test_scores_are_usable_in_conditions_after_a_refresh() -> None:
    risky = {"key": "risky", "name": "Churn risk", "condition": {"scores.churn": {"$gt": 0.7}}}
    p, _ = _engine(risky)
    _track(p, "u1", "Page Viewed", T0)
    p.drain()
    pid = p.lookup("user_id", "u1")
    assert _segments(p, "u1") == []
    p.stores.scores.put("churn", 1, {pid: 0.9}, iso(T0))
    assert p.segment_engine is not None
    p.segment_engine.refresh([pid])
    assert _segments(p, "u1") == ["risky"]


def test_dry_run_counts_without_saving() -> None:
    p, clock = _engine()
    for user in ("a", "b", "c"):
        _track(p, user, "Product Added", T0)
    _track(p, "c", "Order Completed", T0 + timedelta(hours=1), revenue=3)
    clock.set(T0 + timedelta(days=2))
    p.drain()
    assert p.segment_engine is not None
    result = p.segment_engine.dry_run(CART_ABANDONER)
    assert result["count"] == 2
    assert sorted(result["sample"]) == sorted(p.lookup("user_id", u) for u in ("a", "b"))
    assert p.stores.segments.sizes() == {}


def test_a_merge_moves_memberships_to_the_survivor() -> None:
    p, _ = _engine(
        {"key": "buyers", "name": "Buyers", "condition": {"computed.orders": {"$gte": 1}}}
    )
    p.track(
        anonymous_id="anon-1", event="Order Completed", properties={"revenue": 5}, timestamp=iso(T0)
    )
    p.drain()
    anon_pid = p.lookup("anonymous_id", "anon-1")
    assert p.profile(anon_pid)["segments"] == ["buyers"]
    p.identify(
        user_id="u9",
        anonymous_id="anon-1",
        traits={"email": "x@example.com"},
        timestamp=iso(T0 + timedelta(minutes=1)),
    )
    p.drain()
    assert _segments(p, "u9") == ["buyers"]
    assert p.stores.segments.sizes() == {"buyers": 1}


@pytest.mark.parametrize(
    ("condition", "field", "words"),
    [
        ({"computed.revnue": {"$gt": 1}}, "condition.computed.revnue", "unknown"),
        ({"computed.orders": {"$regex": "1"}}, "condition.computed.orders.$regex", "number"),
        ({"computed.orders": {"$gt": "5"}}, "condition.computed.orders.$gt", "number"),
        ({"context.page": "/"}, "condition.context.page", "decision time"),
        ({"$event": {"name": "X", "within": "7days"}}, "condition.$event.within", "duration"),
        ({"$event": {"within": "7d"}}, "condition.$event", "which events"),
        (
            {"$event": {"name": "X", "count": {"$gtt": 1}}},
            "condition.$event.count.$gtt",
            "unknown operator",
        ),
        (
            {"$sequence": {"first": {"name": "A"}, "within": "1h"}},
            "condition.$sequence",
            "notFollowedBy",
        ),
        ({"traits.age": {"$olderThan": "soon"}}, "condition.traits.age.$olderThan", "duration"),
        ({"segments": {"$elemMatch": {"$eq": "nope"}}}, "condition.segments", "unknown segment"),
    ],
)
def test_bad_conditions_are_rejected_with_a_pointer(
    condition: dict[str, Any], field: str, words: str
) -> None:
    from personify.segments.definition import validate

    problems = validate({"key": "s", "name": "S", "condition": condition}, known_segments=set())
    assert problems, condition
    assert any(p.field == field and words in p.message for p in problems), [
        (p.field, p.message) for p in problems
    ]


def test_partial_evaluation_still_sees_new_sessions_and_orders() -> None:
    returning = {
        "key": "returning",
        "name": "Two sessions or more",
        "condition": {"computed.sessions": {"$gte": 2}},
    }
    buyers = {"key": "buyers", "name": "Buyers", "condition": {"computed.orders": {"$gte": 1}}}
    p, _ = _engine(returning, buyers)
    _track(p, "u", "Page Viewed", T0)
    p.drain()
    _track(p, "u", "Page Viewed", T0 + timedelta(minutes=5))  # same session
    p.drain()
    assert _segments(p, "u") == []
    _track(p, "u", "Page Viewed", T0 + timedelta(hours=3))  # a new session
    p.drain()
    assert _segments(p, "u") == ["returning"]
    _track(p, "u", "Order Completed", T0 + timedelta(hours=3, minutes=1), revenue=5)
    p.drain()
    assert _segments(p, "u") == ["buyers", "returning"]
