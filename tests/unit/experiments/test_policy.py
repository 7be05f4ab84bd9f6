"""Experiments and bandits as policies on the decision engine (rules ``use: <experiment>``)."""

from __future__ import annotations

import textwrap
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from personify.clock import FixedClock
from personify.decide.engine import DecisionEngine
from personify.decide.log import DecisionLog, Reward
from personify.decide.placements import Placement
from personify.decide.policies.base import PolicyRequest
from personify.definitions import MemoryDefinitionStore
from personify.errors import InvalidInput
from personify.experiments.definitions import compile_experiment
from personify.experiments.exposures import MemoryExposureLog, SqliteExposureLog
from personify.experiments.policy import ExperimentPolicy, HoldoutPolicy
from personify.experiments.serving import ExperimentService
from personify.workspace import apply

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
WORKSPACE = """
content:
  welcome: {variants: {web: {headline: Welcome}}}
  loyalty: {variants: {web: {headline: Loyalty}}}
  sale: {variants: {web: {headline: Sale}}}
placements:
  hero: {channel: web, candidates: [welcome, loyalty, sale], default: welcome}
rules:
  hero:
    - {id: test, use: hero_test}
experiments:
  hero_test:
    placement: hero
    status: {status}
    shipped: loyalty
    variants:
      - {key: control, content: welcome}
      - {key: loyalty, content: loyalty}
"""


def _view(profile_id: str) -> dict[str, Any]:
    return {"profile_id": profile_id, "traits": {}, "computed": {}, "scores": {}, "segments": []}


def _engine(tmp_path: Path, text: str) -> tuple[DecisionEngine, ExperimentService, DecisionLog]:
    store = MemoryDefinitionStore()
    path = tmp_path / "ws.yaml"
    path.write_text(textwrap.dedent(text))
    apply(path, store, actor="test")
    log = DecisionLog(None)
    engine = DecisionEngine(store, log, FixedClock(NOW), poll_interval=0.0)
    service = ExperimentService(
        store, engine.register_policy, outcomes=log.outcomes, seed=1, sync_interval=0.0
    )
    return engine, service, log


def test_a_running_test_splits_people_and_logs_one_exposure_each(tmp_path: Path) -> None:
    engine, service, _ = _engine(tmp_path, WORKSPACE.replace("{status}", "running"))
    shown = Counter()
    for i in range(400):
        [decision] = engine.decide(_view(f"p{i}"), {}, ["hero"])
        assert decision.policy == "hero_test" and decision.propensity == 0.5
        shown[decision.content] += 1
        again = engine.decide(_view(f"p{i}"), {}, ["hero"])[0]
        assert again.content == decision.content  # the same person keeps their variant
    assert 160 < shown["loyalty"] < 240 and shown["welcome"] + shown["loyalty"] == 400
    exposures = service.exposures.frame("hero_test")
    assert len(exposures) == 400
    assert Counter(exposures["variant"]) == {
        "control": shown["welcome"],
        "loyalty": shown["loyalty"],
    }
    reasons = engine.decide(_view("p1"), {}, ["hero"])[0].reasons
    assert any(r.details.get("experiment") == "hero_test" for r in reasons)


def test_draft_passes_and_shipped_shows_the_winner_to_everyone(tmp_path: Path) -> None:
    engine, _, _ = _engine(tmp_path, WORKSPACE.replace("{status}", "draft"))
    [decision] = engine.decide(_view("p1"), {}, ["hero"])
    assert (decision.content, decision.policy) == ("welcome", "fallback")
    engine, _, _ = _engine(tmp_path, WORKSPACE.replace("{status}", "shipped"))
    contents = {engine.decide(_view(f"p{i}"), {}, ["hero"])[0].content for i in range(50)}
    assert contents == {"loyalty"}


def test_stopping_a_running_test_takes_effect_without_a_restart(tmp_path: Path) -> None:
    engine, service, _ = _engine(tmp_path, WORKSPACE.replace("{status}", "running"))
    body = service.store.get("experiment", "hero_test").body
    service.store.put("experiment", "hero_test", {**body, "status": "stopped"}, "test")
    service.refresh(force=True)
    assert engine.decide(_view("p1"), {}, ["hero"])[0].policy == "fallback"


def test_a_bandit_learns_from_rewards_in_the_decision_log(tmp_path: Path) -> None:
    text = WORKSPACE.replace("{status}", "running").split("experiments:")[0] + textwrap.dedent(
        """
        experiments:
          hero_test:
            placement: hero
            type: bandit
            status: running
            min_weight: 0.02
            variants:
              - {key: welcome, content: welcome}
              - {key: sale, content: sale}
        """
    )
    engine, _, log = _engine(tmp_path, text)
    clicks = 0
    for i in range(300):
        [decision] = engine.decide(_view(f"p{i}"), {}, ["hero"])
        assert 0 < decision.propensity <= 1
        if decision.content == "sale":  # sale is clicked every time, welcome never
            log.add_rewards(
                [Reward(f"m{i}", decision.decision_id, "Content Clicked", 1.0, f"p{i}", "t")], []
            )
            clicks += 1
    late = [engine.decide(_view(f"q{i}"), {}, ["hero"])[0].content for i in range(100)]
    assert late.count("sale") > 85
    outcomes = log.outcomes("hero_test")
    assert all(0 < row["propensity"] <= 1 for row in outcomes)


def _request(candidates: tuple[str, ...], unit: str | None = "p1") -> PolicyRequest:
    placement = Placement("hero", 1, "web", ("welcome", "loyalty"), "welcome")
    return PolicyRequest(placement, candidates, {}, {}, unit)


def test_a_variant_whose_content_is_capped_passes_and_says_why() -> None:
    experiment = compile_experiment(
        "t",
        {
            "placement": "hero",
            "status": "running",
            "variants": [{"key": "a", "content": "welcome"}, {"key": "b", "content": "loyalty"}],
            "coverage": 1.0,
        },
    )
    policy = ExperimentPolicy(experiment, exposures=MemoryExposureLog())
    passes = [policy.choose(_request(("welcome",), f"u{i}")) is None for i in range(40)]
    assert any(passes) and not all(passes)
    request = _request((), None)
    assert policy.choose(request) is None
    assert "no visitor id" in request.notes[-1].message


def test_a_variant_can_hand_the_decision_to_another_strategy() -> None:
    experiment = compile_experiment(
        "strategies",
        {
            "placement": "hero",
            "status": "running",
            "variants": [
                {"key": "rules", "content": "welcome"},
                {"key": "fallback", "policy": "fallback"},
            ],
        },
    )
    from personify.decide.policies.fallback import Fallback

    policy = ExperimentPolicy(experiment, delegates={"fallback": Fallback()})
    choices = [policy.choose(_request(("loyalty", "welcome"), f"u{i}")) for i in range(60)]
    strategies = {c.details.get("strategy") for c in choices if c is not None}
    assert strategies == {None, "fallback"}
    with pytest.raises(InvalidInput, match="not registered"):
        ExperimentPolicy(experiment)


def test_global_holdout_gets_no_personalization_and_both_groups_are_logged(tmp_path: Path) -> None:
    exposures = SqliteExposureLog(tmp_path / "exposures.sqlite")
    holdout = HoldoutPolicy(0.1, exposures=exposures)
    held = [holdout.choose(_request(("loyalty", "welcome"), f"u{i}")) for i in range(1000)]
    in_holdout = [c for c in held if c is not None]
    assert 60 < len(in_holdout) < 140
    assert {c.content for c in in_holdout} == {"welcome"}
    groups = Counter(exposures.frame("global_holdout")["variant"])
    assert groups["holdout"] == len(in_holdout) and sum(groups.values()) == 1000
    exposures.close()
    with pytest.raises(InvalidInput):
        HoldoutPolicy(1.0)


def test_a_contextual_bandit_learns_per_context_from_logged_features(tmp_path: Path) -> None:
    text = WORKSPACE.replace("{status}", "running").split("experiments:")[0] + textwrap.dedent(
        """
        experiments:
          hero_test:
            placement: hero
            type: bandit
            algorithm: linucb
            features: [context.mobile]
            status: running
            min_weight: 0.02
            variants:
              - {key: welcome, content: welcome}
              - {key: sale, content: sale}
        """
    )
    store = MemoryDefinitionStore()
    path = tmp_path / "ws.yaml"
    path.write_text(text)
    apply(path, store, actor="test")
    log = DecisionLog(None)
    engine = DecisionEngine(store, log, FixedClock(NOW), poll_interval=0.0)
    ExperimentService(
        store,
        engine.register_policy,
        outcomes=log.outcomes,
        decision=log.get,
        seed=2,
        sync_interval=0.0,
    )
    best = {1: "sale", 0: "welcome"}  # mobile visitors click sale, desktop visitors welcome
    for i in range(150):
        mobile = i % 2
        [decision] = engine.decide(_view(f"p{i}"), {"mobile": mobile}, ["hero"])
        if decision.content == best[mobile]:
            log.add_rewards(
                [Reward(f"m{i}", decision.decision_id, "Content Clicked", 1.0, f"p{i}", "t")], []
            )
    logged = log.get(decision.decision_id)
    assert logged is not None
    assert any(r.get("features") == {"context.mobile": mobile} for r in logged.reasons)
    for mobile, content in best.items():
        late = [
            engine.decide(_view(f"q{i}"), {"mobile": mobile}, ["hero"])[0].content
            for i in range(40)
        ]
        assert late.count(content) >= 34


def test_a_holdout_definition_holds_its_share_out_of_every_rule_after_it(tmp_path: Path) -> None:
    text = WORKSPACE.replace("{status}", "running").replace(
        "    - {id: test, use: hero_test}",
        "    - {id: holdout, use: everywhere}\n    - {id: test, use: hero_test}",
    ) + ("  everywhere:\n    type: holdout\n    status: running\n    share: 0.1\n")
    engine, service, _ = _engine(tmp_path, text)
    policies = Counter(engine.decide(_view(f"p{i}"), {}, ["hero"])[0].policy for i in range(600))
    assert 30 < policies["everywhere"] < 90
    assert policies["everywhere"] + policies["hero_test"] == 600
    groups = Counter(service.exposures.frame("everywhere")["variant"])
    assert groups == {"holdout": policies["everywhere"], "personalized": policies["hero_test"]}
    experiment = service.experiment("everywhere")
    assert [v.key for v in experiment.variants] == ["holdout", "personalized"]


def test_a_holdout_needs_a_share_and_no_variants() -> None:
    from personify.experiments.definitions import check_experiment

    problems = check_experiment("h", {"type": "holdout", "share": 1.5, "variants": []})
    assert {p.field for p in problems} == {"share"}
    problems = check_experiment("h", {"type": "holdout", "share": 0.1, "variants": [{"key": "x"}]})
    assert {p.field for p in problems} == {"variants"}


def test_a_bandit_only_draws_among_eligible_arms_and_renormalises() -> None:
    from personify.experiments.bandits import UCB1
    from personify.experiments.policy import BanditPlacementPolicy

    experiment = compile_experiment(
        "b",
        {
            "placement": "hero",
            "type": "bandit",
            "status": "running",
            "variants": [{"key": "w", "content": "welcome"}, {"key": "l", "content": "loyalty"}],
        },
    )
    ucb = UCB1(["w", "l"], seed=0)  # no floor: all mass on the best arm
    for _ in range(20):
        ucb.update("w", 1.0)
        ucb.update("l", 0.0)
    policy = BanditPlacementPolicy(experiment, ucb)
    choice = policy.choose(_request(("loyalty",)))  # the best arm is capped
    assert choice is not None and (choice.content, choice.propensity) == ("loyalty", 1.0)
    assert policy.choose(_request(())) is None
