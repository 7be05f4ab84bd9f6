"""Retention purges old events per event name, keeps what a longer rule protects."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import T0, memory_engine

from personify.api.app import create_app
from personify.clock import FixedClock
from personify.errors import InvalidInput
from personify.privacy.retention import purge
from personify.profiles.records import iso

ADMIN = {"Authorization": "Bearer admin"}


def _at(days_ago: int) -> str:
    return iso(T0 - timedelta(days=days_ago))


def test_rules_per_event_name_and_default() -> None:
    p, _ = memory_engine(
        privacy={"retention_days": {"Product Viewed": 30, "Order Completed": 3650, "*": 365}}
    )
    p.track(user_id="u", event="Product Viewed", timestamp=_at(40), messageId="old-view")
    p.track(user_id="u", event="Product Viewed", timestamp=_at(10), messageId="new-view")
    p.track(user_id="u", event="Order Completed", timestamp=_at(1000), messageId="old-order")
    p.page(user_id="u", name="Home", timestamp=_at(400), messageId="old-page")
    p.page(user_id="u", name="Home", timestamp=_at(100), messageId="new-page")
    p.drain()
    report = purge(p)
    assert report == {
        "events:Product Viewed": 1,
        "events:Order Completed": 0,
        "events:*": 1,
        "log_messages": 2,
        "quarantined": 0,
        "decisions": 0,
    }
    left = {e["message_id"] for e in p.timeline(p.lookup("user_id", "u"), 100)}
    assert left == {"new-view", "old-order", "new-page"}
    tombstones = [r for r in p.stores.log.read(0, 10) if b'"Erased"' in r.payload]
    assert {r.message_id for r in tombstones} == {"old-view", "old-page"}
    assert purge(p)["log_messages"] == 0  # nothing left to purge
    assert p.privacy is not None
    assert [r["action"] for r in p.privacy.audit.query()] == ["privacy.retention"] * 2


def test_quarantine_payloads_expire_over_http() -> None:
    p, clock = memory_engine(privacy={"quarantine_retention_days": 7})
    with TestClient(create_app(p)) as client:
        bad = {"batch": [{"type": "track", "userId": "secret-user"}]}
        sent = client.post("/v1/batch", json=bad, auth=("wk", ""))
        assert sent.json()["quarantined"]
        assert (
            client.post("/v1/privacy/retention", headers=ADMIN).json()["removed"]["quarantined"]
            == 0
        )
        clock.advance(days=8)
        res = client.post("/v1/privacy/retention", headers=ADMIN)
        assert res.json()["removed"]["quarantined"] == 1
        [item] = p.quarantined(None)
        assert item["status"] == "expired" and item["payload"] == {}


def test_bad_periods_are_refused() -> None:
    p, _ = memory_engine(privacy={"retention_days": {"*": 0}})
    with pytest.raises(InvalidInput) as err:
        purge(p)
    assert err.value.problems[0].field == "privacy.retention_days.*"


def test_the_server_applies_retention_on_a_schedule() -> None:
    p, _ = memory_engine(privacy={"retention_days": {"*": 30}, "retention_interval_s": 0.05})
    p.track(user_id="u", event="Old", timestamp=_at(40), messageId="old")
    p.drain()
    p.start()
    try:
        assert p.privacy is not None
        deadline = time.monotonic() + 10
        while len(p.privacy.audit.query(action="privacy.retention")) < 2:
            assert time.monotonic() < deadline, "retention did not run twice"
            time.sleep(0.02)
        assert p.timeline(p.lookup("user_id", "u")) == []
    finally:
        p.close()


def test_decisions_expire_in_the_decision_log(tmp_path: Path) -> None:
    from personify.config import Settings
    from personify.decide import DEMO_WORKSPACE
    from personify.decide.service import Decider
    from personify.platform import build
    from personify.workspace import apply

    clock = FixedClock(T0)
    settings = Settings(
        data_dir=tmp_path / "d", write_keys="wk", privacy={"decision_retention_days": 10}
    )
    with build(settings, clock) as p:
        decider = Decider(p, poll_interval=0.0)
        apply(DEMO_WORKSPACE, decider.store, actor="test")
        decider.decide(placements=["home_hero"], anonymous_id="visitor-1")
        p.stores.decisions.flush()
        assert purge(p)["decisions"] == 0
        clock.advance(days=11)
        decider.decide(placements=["home_hero"], anonymous_id="visitor-2")
        assert purge(p)["decisions"] == 1
        decider.close()
