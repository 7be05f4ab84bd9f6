"""Rewards carried back by decision_id, the per-content report, and dismiss memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.unit.decide.conftest import BASE, engine_for, load, view

from personify.clock import FixedClock
from personify.decide.attribution import RewardAttributor
from personify.decide.log import DecisionLog
from personify.definitions import MemoryDefinitionStore
from personify.profiles.processor import Observed, Observer

RULES = "rules:\n  hero:\n    - {id: abandoner, when: {traits.cart: true}, show: cart}\n"


def track(mid: str, event: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": mid,
        "event": event,
        "properties": properties,
        "timestamp": "2026-11-01T12:05:00.000000Z",
    }


def observed(offset: int, message: dict[str, Any], profile_id: str = "p1") -> Observed:
    return Observed(offset, message, profile_id)


def setup(store: MemoryDefinitionStore, clock: FixedClock, log: DecisionLog, tmp_path: Path) -> Any:
    load(store, BASE + RULES, tmp_path)
    return engine_for(store, clock, log)


def test_clicks_and_orders_are_attributed_and_reported(
    store: MemoryDefinitionStore, clock: FixedClock, log: DecisionLog, tmp_path: Path
) -> None:
    engine = setup(store, clock, log, tmp_path)
    shopper = view(traits={"cart": True})
    [a] = engine.decide(shopper, {}, ["hero"])
    [b] = engine.decide(view("p2", traits={"cart": True}), {}, ["hero"])
    [c] = engine.decide(view("p3"), {}, ["hero"])
    assert (a.content, b.content, c.content) == ("cart", "cart", "welcome")
    log.flush()
    attributor = RewardAttributor(log)
    events = [
        observed(1, track("m1", "Content Viewed", decision_id=a.decision_id)),
        observed(2, track("m2", "Content Clicked", decision_id=a.decision_id)),
        observed(3, track("m3", "Content Clicked", decision_id=a.decision_id)),  # second click
        observed(4, track("m4", "Order Completed", decision_id=a.decision_id, revenue=80.5)),
        observed(5, track("m5", "Content Clicked", decision_id=c.decision_id), "p3"),
        observed(6, track("m6", "Order Completed", decision_id=c.decision_id, total=20), "p3"),
        observed(7, track("m7", "Content Clicked", decision_id="d_" + "0" * 32)),  # unknown
        observed(8, track("m8", "Content Clicked", decision_id="not-a-decision")),
        observed(9, track("m9", "Product Viewed", decision_id=a.decision_id)),
        observed(10, {"type": "identify", "messageId": "m10", "traits": {}}),
    ]
    attributor.observe(events)
    attributor.observe(events[:4])  # a replay changes nothing
    report = {row["content"]: row for row in log.report()}
    assert report["cart"] == {
        "placement": "hero",
        "content": "cart",
        "impressions": 2,
        "views": 1,
        "clicks": 1,
        "conversions": 1,
        "revenue": 80.5,
        "ctr": 0.5,
        "conversion_rate": 0.5,
    }
    assert (report["welcome"]["clicks"], report["welcome"]["revenue"]) == (1, 20.0)
    assert log.report(placement="other") == []
    assert [r["content"] for r in log.report(since="2026-11-02")] == []


def test_outcomes_pair_each_decision_with_its_reward_for_policy_learning(
    store: MemoryDefinitionStore, clock: FixedClock, log: DecisionLog, tmp_path: Path
) -> None:
    engine = setup(store, clock, log, tmp_path)
    [a] = engine.decide(view(traits={"cart": True}), {"page": "/"}, ["hero"])
    [b] = engine.decide(view("p2"), {}, ["hero"])
    RewardAttributor(log).observe(
        [observed(1, track("m1", "Content Clicked", decision_id=a.decision_id))]
    )
    rows = {r["decision_id"]: r for r in log.outcomes()}
    assert rows[a.decision_id]["clicked"] == 1 and rows[a.decision_id]["context"] == {"page": "/"}
    assert rows[b.decision_id]["clicked"] == 0
    assert [r["decision_id"] for r in log.outcomes(policy="fallback")] == [b.decision_id]


def test_the_attributor_is_a_processor_observer_with_a_checkpoint(log: DecisionLog) -> None:
    attributor: Observer = RewardAttributor(log)
    assert attributor.checkpoint() == 0
    attributor.observe([observed(5, track("m1", "Page Viewed"))], {}, 5)
    assert attributor.checkpoint() == 5
    attributor.observe([], {}, 9)
    assert attributor.checkpoint() == 9
    attributor.observe([], {}, 7)  # never goes back
    assert attributor.checkpoint() == 9


def test_dismissed_content_is_remembered_across_processes(
    store: MemoryDefinitionStore, clock: FixedClock, tmp_path: Path
) -> None:
    path = tmp_path / "decisions.sqlite"
    api_log, worker_log = DecisionLog(path), DecisionLog(path)
    engine = setup(store, clock, api_log, tmp_path)
    [anon] = engine.decide(None, {}, ["hero"], anonymous_id="a-1")
    [known] = engine.decide(view(traits={"cart": True}), {}, ["hero"])
    assert (anon.content, known.content) == ("welcome", "cart")
    api_log.flush()
    RewardAttributor(worker_log).observe(
        [
            observed(1, track("m1", "Content Dismissed", decision_id=known.decision_id)),
            # the anonymous visitor has logged in as p9 by the time the event is processed
            observed(2, track("m2", "Content Dismissed", decision_id=anon.decision_id), "p9"),
            observed(3, track("m3", "Content Dismissed", content_id="shoes"), "p1"),
        ]
    )
    again = engine_for(store, clock, api_log)  # a fresh engine loads them from the log
    [d] = again.decide(view(traits={"cart": True}), {}, ["hero"])
    assert d.content == "welcome"
    assert "'cart' is dismissed by this person" in d.reasons[0].message
    # both dismissed the default, so the fallback shows the first candidate left
    assert again.decide(None, {}, ["hero"], anonymous_id="a-1")[0].content == "cart"
    assert again.decide(view("p9"), {}, ["hero"])[0].content == "cart"
    assert again.decide(view("p3"), {}, ["hero"])[0].content == "welcome"
    # the running engine picks new dismissals up on its next poll
    assert engine.decide(view(traits={"cart": True}), {}, ["hero"])[0].content == "welcome"
    api_log.close()
    worker_log.close()
