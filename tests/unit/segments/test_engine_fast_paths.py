"""The segment engine's shortcuts answer exactly as the plain definitions do.

The engine asks a clause for its truth and its due time at once (``Clause.judge``), answers
one-clause and field-only segments without the flags document, keeps window entries sorted
and searches them by bisection, and decodes stored clause states only when it reads them.
Each test compares a shortcut with the straightforward computation it replaces.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from tests.unit.helpers import T0, memory_engine

from personify.profiles.records import iso
from personify.segments.behavior import EventAggregate, Sequence, parse
from personify.segments.conditions import compile_condition
from personify.segments.definition import compile_segment, evaluate_at, judge
from personify.segments.document import condition_document

MOMENTS = [T0 + timedelta(hours=h) for h in (-30, -2, 0, 1, 5, 23, 24, 25, 24 * 8)]
WINDOWED = [
    {"name": "Product Viewed", "within": "1d", "count": {"$gte": 2}},
    {"name": "Order Completed", "within": "7d", "sum": {"property": "revenue", "value": 50}},
    {"name": "Product Viewed", "within": "2d", "distinct": {"property": "sku"}},
    {"name": "Product Viewed", "count": 0},
    {"name": "Product Viewed", "count": {"$gte": 2}},
    {"name": "Order Completed", "sum": {"property": "revenue", "value": {"$gte": 10}}},
    {"name": "Product Viewed", "distinct": {"property": "sku", "value": {"$gte": 2}}},
    {"name": "Product Viewed", "last": {"$olderThan": "1d"}},
    {"name": "Product Viewed", "first": {"$newerThan": "2d"}},
]


def _message(event: str, at: datetime, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "timestamp": iso(at), "properties": props}


def _history(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(rng.randrange(0, 9)):
        at = T0 + timedelta(minutes=rng.randrange(-3000, 3000))
        event = rng.choice(["Product Viewed", "Order Completed", "Product Added"])
        out.append(_message(event, at, sku=f"sku-{rng.randrange(3)}", revenue=rng.randrange(40)))
    return out


def _brute_force_due(clause: EventAggregate, state: dict[str, Any], now: datetime) -> Any:
    """The due time of a windowed aggregate by a scan over every entry, in order."""
    assert clause.window is not None
    start, end = iso(now - clause.window), iso(now)
    for at, _ in sorted(state.get("w", []), key=lambda e: e[0]):
        if start < at <= end:
            return datetime.fromisoformat(at) + clause.window
        if at > end:
            return datetime.fromisoformat(at)
    return None


@pytest.mark.parametrize("spec", WINDOWED)
@pytest.mark.parametrize("seed", range(8))
def test_an_event_clause_judges_as_holds_and_due(spec: dict[str, Any], seed: int) -> None:
    clause = EventAggregate(spec)
    state: dict[str, Any] = {}
    for message in _history(seed):  # out of time order, as late events arrive
        clause.update(state, message)
    for now in MOMENTS:
        assert clause.judge(state, {}, now) == (
            clause.holds(state, {}, now),
            clause.due(state, {}, now),
        )
        assert clause.judge(None, {}, now) == (
            clause.holds(None, {}, now),
            clause.due(None, {}, now),
        )


@pytest.mark.parametrize("seed", range(12))
def test_window_entries_stay_sorted_and_are_searched_like_a_scan(seed: int) -> None:
    clause = EventAggregate({"name": "Product Viewed", "within": "1d", "count": {"$gte": 2}})
    state: dict[str, Any] = {}
    for message in _history(seed) + _history(seed + 100):
        clause.update(state, message)
    entries = state.get("w", [])
    assert entries == sorted(entries, key=lambda e: e[0])
    for now in MOMENTS:
        start, end = iso(now - timedelta(days=1)), iso(now)
        in_window = sum(1 for at, _ in entries if start < at <= end)
        assert clause.holds(state, {}, now) is (in_window >= 2)
        assert clause.due(state, {}, now) == _brute_force_due(clause, state, now)
        pruned = {"w": list(entries)}
        clause.prune(pruned, now)
        assert pruned.get("w", []) == [e for e in entries if e[0] > start]


def test_a_sequence_judges_as_holds_and_due() -> None:
    clause = Sequence(
        {
            "first": {"name": "Product Added"},
            "notFollowedBy": {"name": "Order Completed"},
            "within": "24h",
        }
    )
    states: list[dict[str, Any] | None] = [
        None,
        {},
        {"a": iso(T0)},
        {"a": iso(T0), "b": iso(T0 + timedelta(hours=1))},
        {"a": iso(T0 + timedelta(hours=2)), "b": iso(T0 + timedelta(hours=1))},
        {"b": iso(T0)},
    ]
    for state in states:
        for now in MOMENTS:
            assert clause.judge(state, {}, now) == (
                clause.holds(state, {}, now),
                clause.due(state, {}, now),
            )


@pytest.mark.parametrize("op", ["$olderThan", "$newerThan"])
@pytest.mark.parametrize("value", [None, "not a time", 17, iso(T0), iso(T0 + timedelta(days=2))])
def test_a_relative_time_judges_as_holds_and_due(op: str, value: Any) -> None:
    [clause] = parse({"computed.last_seen": {op: "1d"}}).clauses.values()
    doc = {"computed": {"last_seen": value}}
    for now in MOMENTS:
        assert clause.judge(None, doc, now) == (
            clause.holds(None, doc, now),
            clause.due(None, doc, now),
        )


SEGMENTS = [
    {"key": "only_event", "condition": {"$event": {"name": "Product Viewed", "within": "1d"}}},
    {"key": "only_time", "condition": {"computed.last_seen": {"$newerThan": "1d"}}},
    {"key": "trait_time", "condition": {"traits.signup": {"$olderThan": "1d"}}},
    {
        "key": "fields_only",
        "condition": {
            "$or": [
                {"computed.orders": {"$gte": 2}},
                {"traits.plan": "pro", "computed.sessions": 1},
            ]
        },
    },
    {
        "key": "mixed",
        "condition": {
            "traits.plan": "pro",
            "$event": {"name": "Product Viewed", "within": "1d", "count": {"$gte": 2}},
            "computed.last_seen": {"$olderThan": "2h"},
        },
    },
    {"key": "listed", "kind": "static", "members": {"user_id": ["u1"], "profile_id": ["p_2"]}},
]


@pytest.mark.parametrize("body", SEGMENTS, ids=lambda b: b["key"])
def test_a_segment_judges_as_evaluate_at_with_its_clauses_due(body: dict[str, Any]) -> None:
    segment = compile_segment(body)
    assert (segment.only is not None) == (body["key"] in ("only_event", "only_time", "trait_time"))
    assert (segment.test is not None) == (body["key"] == "fields_only")
    assert segment.reads_doc == (body["key"] not in ("only_event", "only_time"))
    profiles = [
        ("p_1", {"user_id": ["u1"]}, {"plan": "pro", "signup": iso(T0 - timedelta(days=2))}, 3),
        ("p_2", {}, {"plan": "free", "signup": iso(T0)}, 0),
        ("p_3", {"user_id": ["u3"]}, {"plan": "pro"}, 1),
    ]
    for seed, (pid, identities, traits, orders) in enumerate(profiles):
        raw = {
            "profile_id": pid,
            "identities": identities,
            "traits": {k: {"value": v, "source": "api", "at": iso(T0)} for k, v in traits.items()},
            "computed": {"orders": orders, "sessions": 1, "last_seen": iso(T0)},
        }
        states: dict[str, dict[str, Any]] = {}
        for clause in segment.clauses.values():
            state: dict[str, Any] = {}
            for message in _history(seed):
                clause.update(state, message)
            states[clause.state_id] = state
        idents = {**identities, "profile_id": [pid]}
        for now in MOMENTS:
            doc = condition_document({**raw, "segments": []})
            expected = evaluate_at(segment, dict(doc), idents, states, now)
            dues = [c.due(states.get(c.state_id), doc, now) for c in segment.clauses.values()]
            earliest = min((d for d in dues if d is not None), default=None)
            assert judge(segment, doc, idents, states, now) == (expected, earliest)
            if not segment.reads_doc:  # the engine hands these the stored profile instead
                assert judge(segment, raw, idents, states, now) == (expected, earliest)


@pytest.mark.parametrize("size", [2, 3, 4])
def test_an_or_of_a_few_conditions_answers_a_boolean(size: int) -> None:
    condition = compile_condition({"$or": [{"n": i} for i in range(size)]})
    assert [condition({"n": n}) for n in range(size + 1)] == [True] * size + [False]
    assert all(type(condition({"n": n})) is bool for n in range(size + 1))


def test_a_failed_write_is_retried_without_counting_an_event_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """States are decoded per batch and only the store's committed copy is kept: after a
    write fails, the retried batch starts from what was committed."""
    p, clock = memory_engine()
    body: dict[str, Any] = {
        "key": "three_views",
        "condition": {"$event": {"name": "Product Viewed", "within": "7d", "count": 3}},
    }
    p.stores.definitions.put("segment", body["key"], body, actor="test")
    engine = p.segment_engine
    assert engine is not None
    engine.reload()
    p.track(user_id="u1", event="Product Viewed", properties={}, timestamp=iso(T0))
    p.drain()  # one view stored
    store = p.stores.segments
    real_write = store.write_encoded  # the transaction itself: it fails after the batch is decided
    calls = {"n": 0}

    def fail_once(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("disk full")
        real_write(*args, **kwargs)

    monkeypatch.setattr(store, "write_encoded", fail_once)
    for minutes in (1, 2):
        p.track(
            user_id="u1",
            event="Product Viewed",
            properties={},
            timestamp=iso(T0 + timedelta(minutes=minutes)),
        )
    clock.set(T0 + timedelta(hours=1))
    with pytest.raises(RuntimeError, match="disk full"):
        p.drain()
    p.drain()  # the processor retries the batch from the engine's checkpoint
    assert calls["n"] >= 2
    assert p.profile_by("user_id", "u1")["segments"] == ["three_views"]
    pid = p.lookup("user_id", "u1")
    [state] = store.states([pid], list(engine.segments["three_views"].state_ids)).values()
    assert len(state["w"]) == 3


def test_encoded_states_are_the_committed_json(tmp_path: Any) -> None:
    from personify.segments.store import SegmentStore, SegmentWrite

    owner = SegmentStore(tmp_path / "segments.sqlite")
    owner.own(size=100)
    reader = SegmentStore(tmp_path / "segments.sqlite")
    state = {"w": [[iso(T0), 1]]}
    owner.write(SegmentWrite(states={("p1", "c1"): state}))
    state["w"].append([iso(T0), 2])  # the writer's object is not the store's
    for store in (owner, reader, owner):  # the owner's second answer comes from its cache
        encoded = store.encoded_states(["p1", "p2"])
        assert not encoded.get("p2")
        assert orjson.loads(encoded["p1"]["c1"]) == {"w": [[iso(T0), 1]]}
