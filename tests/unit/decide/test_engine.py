"""The decision path: rules, ranking, policies, fallbacks, caps, dismissals, rendering, reload."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.unit.decide.conftest import BASE, engine_for, load, view

from personify.clock import FixedClock
from personify.decide.catalog import LiveCatalog
from personify.decide.engine import DecisionEngine
from personify.decide.log import DecisionLog
from personify.decide.policies import Choice, Policy, PolicyRequest, Reason
from personify.definitions import MemoryDefinitionStore
from personify.errors import InvalidInput

RULES = """
rules:
  hero:
    - id: abandoner
      description: started checkout, never ordered
      when: {computed.orders: 0, "computed.event_counts.Checkout Started": {$gte: 1}}
      show: cart
    - id: lapsing
      when: {computed.orders: {$gte: 2}, computed.days_since_last_order: {$gte: 40}}
      show: winback
"""
ABANDONER = view(traits={"first_name": "Ada"}, computed={"event_counts": {"Checkout Started": 2}})


@pytest.fixture
def engine(
    store: MemoryDefinitionStore, clock: FixedClock, log: DecisionLog, tmp_path: Path
) -> DecisionEngine:
    load(store, BASE + RULES, tmp_path)
    return engine_for(store, clock, log)


def one(engine: DecisionEngine, v: Mapping[str, Any] | None, **context: Any) -> Any:
    [decision] = engine.decide(v, context, ["hero"], anonymous_id="anon-1")
    return decision


def test_first_matching_rule_decides_and_says_why(engine: DecisionEngine) -> None:
    d = one(engine, ABANDONER)
    assert (d.content, d.policy, d.propensity, d.variant) == ("cart", "rules", 1.0, "web")
    assert d.rendered == {"headline": "Your cart, Ada"}
    assert [r.as_dict() for r in d.reasons] == [
        {
            "type": "rule",
            "message": "rule 'abandoner' matched: started checkout, never ordered",
            "rule": "abandoner",
            "rules_version": 1,
            "facts": {"computed.event_counts.Checkout Started": 2, "computed.orders": 0},
        }
    ]
    assert d.decision_id.startswith("d_") and len(d.decision_id) == 34


def test_recency_is_derived_for_rules(engine: DecisionEngine) -> None:
    lapsing = view(computed={"orders": 4, "last_order_at": "2026-09-01T12:00:00.000000Z"})
    d = one(engine, lapsing)
    assert (d.content, d.reasons[0].details["rule"]) == ("winback", "lapsing")
    recent = view(computed={"orders": 4, "last_order_at": "2026-10-20T12:00:00.000000Z"})
    assert one(engine, recent).content == "welcome"


def test_unknown_visitor_gets_the_fallback(engine: DecisionEngine) -> None:
    d = one(engine, None)
    assert (d.content, d.policy) == ("welcome", "fallback")
    assert d.rendered == {"headline": "Welcome there"}
    assert [r.type for r in d.reasons] == ["visitor", "fallback"]


def test_unknown_placement_is_a_precise_error(engine: DecisionEngine) -> None:
    with pytest.raises(InvalidInput) as err:
        engine.decide(None, {}, ["hero", "nope"])
    assert [p.field for p in err.value.problems] == ["placements[1]"]
    assert "hero" in (err.value.hint or "")


def test_content_caps_give_way_to_the_next_choice_until_the_window_passes(
    engine: DecisionEngine, clock: FixedClock
) -> None:
    assert [one(engine, ABANDONER).content for _ in range(2)] == ["cart", "cart"]
    capped = one(engine, ABANDONER)
    assert capped.content == "welcome"
    assert "'cart' is capped (2 per day)" in capped.reasons[0].message
    clock.advance(hours=24, seconds=1)
    assert one(engine, ABANDONER).content == "cart"


def test_caps_are_per_person(engine: DecisionEngine) -> None:
    for _ in range(2):
        one(engine, ABANDONER)
    other = view("p2", computed={"event_counts": {"Checkout Started": 1}})
    assert one(engine, other).content == "cart"


def test_placement_caps_stop_the_slot(
    store: MemoryDefinitionStore, clock: FixedClock, tmp_path: Path
) -> None:
    capped = BASE.replace(
        "    default: welcome\n", "    default: welcome\n    caps: {per_hour: 1}\n"
    )
    load(store, capped + RULES, tmp_path)
    engine = engine_for(store, clock)
    assert one(engine, ABANDONER).content == "cart"
    stopped = one(engine, ABANDONER)
    assert (stopped.content, stopped.rendered, stopped.policy) == (None, None, "caps")
    assert "capped (1 per hour)" in stopped.reasons[0].message
    assert one(engine, None).content == "welcome"  # the anonymous visitor is someone else


def test_caps_survive_a_restart_through_the_decision_log(
    store: MemoryDefinitionStore, clock: FixedClock, log: DecisionLog, tmp_path: Path
) -> None:
    load(store, BASE + RULES, tmp_path)
    first = engine_for(store, clock, log)
    for _ in range(2):
        one(first, ABANDONER)
    again = engine_for(store, clock, log)
    assert one(again, ABANDONER).content == "welcome"


def test_dismissed_content_is_not_shown_again(engine: DecisionEngine) -> None:
    engine.dismiss("p1", "cart")
    d = one(engine, ABANDONER)
    assert d.content == "welcome"
    assert "dismissed by this person" in d.reasons[0].message


def test_next_rule_excludes_candidates_for_later_rules(
    store: MemoryDefinitionStore, clock: FixedClock, tmp_path: Path
) -> None:
    rules = """
    rules:
      hero:
        - {id: night, when: {context.local_hour: {$lt: 6}}, next: true, exclude: [cart]}
        - {id: abandoner, when: {computed.orders: 0}, show: cart}
        - {id: shoes, show: shoes}
    """
    load(store, BASE, tmp_path)
    load(store, rules, tmp_path, "rules.yaml")
    engine = engine_for(store, clock)
    day = one(engine, ABANDONER, local_hour=14)
    assert day.content == "cart"
    night = one(engine, ABANDONER, timezone="Asia/Tokyo")  # 12:00 UTC is 21:00 in Tokyo
    assert night.content == "cart"
    early = one(engine, ABANDONER, timezone="America/Los_Angeles")  # 05:00 there
    assert early.content == "shoes"
    assert [r.details.get("rule") for r in early.reasons] == ["night", "abandoner", "shoes"]


RANKED = """
rules:
  hero:
    - id: affinity
      rank: {score: "scores.affinity_{slug}", label: category affinity}
      among: [shoes, bags]
"""


def test_ranking_by_model_scores_on_the_profile(
    store: MemoryDefinitionStore, clock: FixedClock, tmp_path: Path
) -> None:
    load(store, BASE + RANKED, tmp_path)
    engine = engine_for(store, clock)
    scored = view(scores={"affinity_shoes": 0.2, "affinity_bags": {"value": 0.9, "model": "m"}})
    d = one(engine, scored)
    assert (d.content, d.policy) == ("bags", "ranking")
    assert d.reasons[1].details["scores"] == {"bags": 0.9, "shoes": 0.2}
    assert "highest category affinity score: 'bags'" in d.reasons[1].message
    unscored = one(engine, view())
    assert unscored.content == "welcome"
    assert "no candidate has a usable category affinity score" in unscored.reasons[0].message


def test_ranking_by_a_scorer_computed_at_request_time(
    store: MemoryDefinitionStore, clock: FixedClock, tmp_path: Path
) -> None:
    rules = "rules:\n  hero:\n    - {id: live, rank: {scorer: recs, min_score: 0.5}}\n"
    load(store, BASE + rules, tmp_path)
    engine = engine_for(store, clock)
    missing = one(engine, view())
    assert "scorer 'recs' is not registered" in missing.reasons[0].message

    def recs(document: Mapping[str, Any], candidates: Sequence[str]) -> dict[str, float]:
        bonus = 0.6 if "vip" in document["segments"] else 0.0
        return {"shoes": 0.3 + bonus, "bags": 0.4, "cart": float("nan")}

    engine.register_scorer("recs", recs)
    assert one(engine, view(segments=["vip"])).content == "shoes"
    below = one(engine, view())
    assert below.content == "welcome"  # no score reaches min_score

    def broken(document: Mapping[str, Any], candidates: Sequence[str]) -> dict[str, float]:
        raise RuntimeError("model not loaded")

    engine.register_scorer("recs", broken)
    failed = one(engine, view())
    assert failed.content == "welcome"
    assert "model not loaded" in failed.reasons[0].message


class CoinFlip:
    """A stand-in for an experiment: picks the last candidate with probability 0.5."""

    name = "coin"

    def __init__(self) -> None:
        self.seen: list[PolicyRequest] = []

    def choose(self, request: PolicyRequest) -> Choice | None:
        self.seen.append(request)
        pick = request.candidates[-1]
        return Choice(pick, "experiment:coin", 0.5, (Reason("policy", f"arm {pick}"),), "web")


def test_rules_hand_over_to_registered_policies(
    store: MemoryDefinitionStore, clock: FixedClock, log: DecisionLog, tmp_path: Path
) -> None:
    rules = "rules:\n  hero:\n    - {id: test, use: coin, among: [shoes, bags]}\n"
    load(store, BASE + rules, tmp_path)
    engine = engine_for(store, clock, log)
    coin = CoinFlip()
    assert isinstance(coin, Policy)
    engine.register_policy("coin", coin)
    d = one(engine, view())
    assert (d.content, d.policy, d.propensity) == ("bags", "experiment:coin", 0.5)
    assert [r.type for r in d.reasons] == ["rule", "policy"]
    request = coin.seen[0]
    assert request.candidates == ("shoes", "bags")
    assert request.unit == "p1"
    assert request.document["profile_id"] == "p1"
    logged = log.get(d.decision_id)
    assert logged is not None and (logged.policy, logged.propensity) == ("experiment:coin", 0.5)


def test_a_failing_template_falls_back_to_static_fields_or_the_default(
    store: MemoryDefinitionStore, clock: FixedClock, tmp_path: Path
) -> None:
    text = BASE.replace(
        '    variants: {web: {headline: "We miss you"}}',
        '    variants: {web: {headline: "{{ 100 / computed.orders }}"}}\n'
        "    fallback: {headline: We miss you}",
    ).replace(
        "    variants: {web: {headline: Shoes}}", '    variants: {web: {headline: "{{ 1 / 0 }}"}}'
    )
    rules = "rules:\n  hero:\n    - {id: w, when: {traits.pick: w}, show: winback}\n"
    rules += "    - {id: s, when: {traits.pick: s}, show: shoes}\n"
    load(store, text + rules, tmp_path)
    engine = engine_for(store, clock)
    static = one(engine, view(traits={"pick": "w"}))
    assert (static.content, static.rendered) == ("winback", {"headline": "We miss you"})
    assert "showing its static fallback" in static.reasons[-1].message
    default = one(engine, view(traits={"pick": "s"}))
    assert (default.content, default.rendered) == ("welcome", {"headline": "Welcome there"})
    assert "failed to render" in default.reasons[-1].message


def test_changes_reach_the_decision_path_without_a_restart(
    engine: DecisionEngine, store: MemoryDefinitionStore
) -> None:
    assert one(engine, ABANDONER).content == "cart"
    store.put("rule_set", "hero", {"rules": [{"id": "all", "show": "shoes"}]}, actor="ada")
    d = one(engine, ABANDONER)
    assert (d.content, d.reasons[0].details["rules_version"]) == ("shoes", 2)
    store.rollback("rule_set", "hero", 1, actor="ada")
    assert one(engine, ABANDONER).content == "cart"
    store.delete("rule_set", "hero", actor="ada")
    assert one(engine, ABANDONER).content == "welcome"


def test_the_catalog_polls_the_revision_at_most_every_interval(
    store: MemoryDefinitionStore, tmp_path: Path
) -> None:
    load(store, BASE, tmp_path)
    now = [100.0]
    live = LiveCatalog(store, poll_interval=0.5, monotonic=lambda: now[0])
    assert live.current().placements["hero"].default == "welcome"
    store.put(
        "placement", "hero", {"channel": "web", "candidates": ["shoes"], "default": "shoes"}, "a"
    )
    now[0] += 0.2
    assert live.current().placements["hero"].default == "welcome"  # not yet checked
    now[0] += 0.4
    assert live.current().placements["hero"].default == "shoes"


def test_every_decision_is_logged_with_who_what_why_and_when(
    engine: DecisionEngine, log: DecisionLog
) -> None:
    d = one(engine, ABANDONER, page="/", channel="web")
    logged = log.get(d.decision_id)
    assert logged is not None
    assert (logged.profile_id, logged.unit, logged.placement, logged.content) == (
        "p1",
        "p1",
        "hero",
        "cart",
    )
    assert logged.at == "2026-11-01T12:00:00.000000Z"
    assert logged.context == {"page": "/", "channel": "web"}
    assert logged.reasons[0]["rule"] == "abandoner"
    anon = one(engine, None)
    logged_anon = log.get(anon.decision_id)
    assert logged_anon is not None and (logged_anon.profile_id, logged_anon.unit) == (
        None,
        "anon:anon-1",
    )


def test_hybrid_rules_combine_model_scores_and_behaviour(
    store: MemoryDefinitionStore, clock: FixedClock, tmp_path: Path
) -> None:
    rules = """
    rules:
      hero:
        - id: retention
          description: churn score above 0.7 and no visit in 14 days
          when: {scores.churn: {$gt: 0.7}, computed.days_since_last_seen: {$gte: 14}}
          show: winback
    """
    load(store, BASE, tmp_path)
    load(store, rules, tmp_path, "rules.yaml")
    engine = engine_for(store, clock)
    away = "2026-10-10T09:00:00.000000Z"  # 22 days before NOW
    recent = "2026-10-30T09:00:00.000000Z"
    at_risk = view(scores={"churn": {"value": 0.81}}, computed={"last_seen": away})
    d = one(engine, at_risk)
    assert d.content == "winback"
    assert d.reasons[0].details["facts"] == {
        "computed.days_since_last_seen": 22.125,
        "scores.churn": 0.81,
    }
    assert one(engine, view(scores={"churn": 0.81}, computed={"last_seen": recent})).content == (
        "welcome"
    )
    assert one(engine, view(scores={"churn": 0.4}, computed={"last_seen": away})).content == (
        "welcome"
    )


class EmailArm:
    name = "email-arm"

    def choose(self, request: PolicyRequest) -> Choice | None:
        return Choice("welcome", "experiment:email", 0.25, (Reason("policy", "arm B"),), "email")


def test_a_policy_may_choose_the_variant_to_render(
    store: MemoryDefinitionStore, clock: FixedClock, tmp_path: Path
) -> None:
    load(store, BASE + "rules:\n  hero:\n    - {id: t, use: arm}\n", tmp_path)
    engine = engine_for(store, clock)
    engine.register_policy("arm", EmailArm())
    d = one(engine, view())
    assert (d.content, d.variant, d.rendered, d.propensity) == (
        "welcome",
        "email",
        {"subject": "Welcome"},
        0.25,
    )


class FlakyStore(MemoryDefinitionStore):
    """A store whose reads can be made to fail, like a locked database file."""

    broken = False

    def revision(self) -> int:
        if self.broken:
            raise sqlite3.OperationalError("database is locked")
        return super().revision()


def test_an_unreadable_store_keeps_the_last_good_catalog(
    clock: FixedClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore()
    load(store, BASE + RULES, tmp_path)
    engine = engine_for(store, clock)
    assert one(engine, ABANDONER).content == "cart"
    store.broken = True
    assert one(engine, ABANDONER).content == "cart"
    assert "cannot reload definitions" in caplog.text
    store.broken = False
    store.put("rule_set", "hero", {"rules": [{"id": "all", "show": "bags"}]}, actor="ada")
    assert one(engine, ABANDONER).content == "bags"


def test_reasons_show_the_facts_a_rule_read_but_not_trait_values(
    store: MemoryDefinitionStore, clock: FixedClock, tmp_path: Path
) -> None:
    rules = "rules:\n  hero:\n    - id: r\n      show: cart\n"
    rules += "      when: {traits.email: {$regex: corp}, computed.orders: 0}\n"
    load(store, BASE + rules, tmp_path)
    engine = engine_for(store, clock)
    d = one(engine, view(traits={"email": "ada@corp.example"}))
    assert d.content == "cart"
    assert d.reasons[0].details["facts"] == {"computed.orders": 0}
