"""Deciding by identity: unknown visitors, remembered identities, and merges."""

from __future__ import annotations

from pathlib import Path

from tests.unit.decide.conftest import BASE, load
from tests.unit.helpers import memory_engine

from personify.decide.service import Decider

RULES = "rules:\n  hero:\n    - {id: vip, when: {traits.plan: pro}, show: winback}\n"


def test_an_anonymous_visitor_is_followed_through_login_and_merge(tmp_path: Path) -> None:
    engine, _ = memory_engine()
    decider = Decider(engine, poll_interval=0.0)
    load(decider.store, BASE + RULES, tmp_path)
    first = decider.decide(anonymous_id="a-1", placements=["hero"])[0]
    assert (first.content, first.reasons[0].type) == ("welcome", "visitor")

    engine.page(anonymous_id="a-1", name="Home")
    engine.drain()
    browsing = decider.decide(anonymous_id="a-1", placements=["hero"])[0]
    assert browsing.reasons[0].type == "fallback"  # a profile now: no "unknown visitor"

    engine.identify(user_id="u-1", traits={"plan": "pro"})
    engine.drain()
    engine.identify(user_id="u-1", anonymous_id="a-1")  # login merges the two profiles
    engine.drain()
    merged = decider.decide(anonymous_id="a-1", placements=["hero"])[0]
    assert (merged.content, merged.reasons[0].details["rule"]) == ("winback", "vip")
    both = decider.decide(user_id="u-1", anonymous_id="a-1", placements=["hero"])[0]
    assert both.content == "winback"
    decider.close()
    engine.close()
