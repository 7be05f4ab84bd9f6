"""Bandit policies: honest propensities, guards, learning, persistence and the regret race."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from personify.errors import InvalidInput, NotFound
from personify.experiments.bandits import (
    UCB1,
    BetaThompson,
    EpsilonGreedy,
    GaussianThompson,
    LinUCB,
    simulate_regret,
)
from personify.experiments.bandits.base import BanditPolicy

ARMS = ["a", "b", "c"]


def _policies() -> list[BanditPolicy]:
    return [
        BetaThompson(ARMS, seed=1),
        GaussianThompson(ARMS, seed=1),
        EpsilonGreedy(ARMS, seed=1),
        UCB1(ARMS, seed=1, min_weight=0.05),
        LinUCB(ARMS, features=["mobile"], seed=1),
    ]


@pytest.mark.parametrize("policy", _policies(), ids=lambda p: p.name)
def test_every_choice_carries_the_probability_it_was_drawn_with(policy: BanditPolicy) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        choice = policy.choose({"mobile": 1})
        assert sum(choice.probabilities) == pytest.approx(1.0)
        assert choice.propensity == pytest.approx(choice.probabilities[choice.index])
        assert choice.propensity > 0
        policy.update(choice.arm, float(rng.random() < 0.3), {"mobile": 1})


@pytest.mark.parametrize("policy", _policies(), ids=lambda p: p.name)
def test_learned_state_round_trips_through_json_values(policy: BanditPolicy) -> None:
    for arm in ARMS * 5:
        policy.update(arm, 1.0 if arm == "b" else 0.0, {"mobile": 0})
    state = policy.state()
    fresh = (
        type(policy)(ARMS, features=["mobile"])
        if isinstance(policy, LinUCB)
        else type(policy)(ARMS)
    )
    fresh.load_state(state)
    assert fresh.state() == state


def test_thompson_shifts_traffic_to_the_better_arm_but_keeps_the_floor() -> None:
    policy = BetaThompson(ARMS, seed=2, min_weight=0.02)
    for _ in range(300):
        policy.update("a", 0.0)
        policy.update("b", 1.0)
        policy.update("c", 0.0)
    p = policy.probabilities()
    assert p[1] == pytest.approx(1 - 2 * 0.02, abs=0.01)
    assert p.min() >= 0.02 - 1e-12


def test_burn_in_keeps_the_split_uniform_until_every_arm_has_data() -> None:
    policy = BetaThompson(ARMS, seed=3, burn_in=5)
    for _ in range(5):
        policy.update("a", 1.0)
        policy.update("b", 0.0)
    assert policy.probabilities() == pytest.approx([1 / 3] * 3)
    for _ in range(5):
        policy.update("c", 0.0)
    assert policy.probabilities()[0] > 0.5


def test_epsilon_greedy_probabilities_are_exact() -> None:
    policy = EpsilonGreedy(ARMS, epsilon=0.3, seed=4)
    policy.update("a", 0.2)
    policy.update("b", 0.9)
    policy.update("c", 0.1)
    assert policy.probabilities() == pytest.approx([0.1, 0.8, 0.1])


def test_untried_arms_are_tried_first() -> None:
    policy = UCB1(ARMS, seed=0)
    policy.update("a", 1.0)
    assert policy.probabilities() == pytest.approx([0, 0.5, 0.5])


def test_gaussian_thompson_prefers_the_higher_mean_revenue() -> None:
    policy = GaussianThompson(["low", "high"], seed=5)
    rng = np.random.default_rng(5)
    for _ in range(100):
        policy.update("low", float(rng.normal(20, 5)))
        policy.update("high", float(rng.normal(30, 5)))
    assert policy.probabilities()[1] > 0.95


def test_linucb_learns_which_arm_suits_which_context() -> None:
    policy = LinUCB(["short", "long"], features=["mobile"], seed=6, alpha=0.5)
    for _ in range(200):
        policy.update("short", 1.0, {"mobile": True})
        policy.update("long", 0.0, {"mobile": True})
        policy.update("short", 0.0, {"mobile": False})
        policy.update("long", 1.0, {"mobile": False})
    assert policy.probabilities({"mobile": True})[0] > 0.9
    assert policy.probabilities({"mobile": False})[1] > 0.9


def test_a_late_reward_credits_a_decision_already_counted_as_zero() -> None:
    counted = BetaThompson(["a", "b"], seed=0)
    counted.update("a", 0.0)
    counted.credit("a", 1.0)
    direct = BetaThompson(["a", "b"], seed=0)
    direct.update("a", 1.0)
    assert counted.state() == direct.state()


def test_bad_configuration_and_unknown_arms_are_refused() -> None:
    with pytest.raises(InvalidInput):
        BetaThompson(["only"])
    with pytest.raises(InvalidInput):
        BetaThompson(["a", "a"])
    with pytest.raises(InvalidInput):
        BetaThompson(["a", "b"], min_weight=0.6)
    with pytest.raises(InvalidInput):
        EpsilonGreedy(["a", "b"], epsilon=2)
    with pytest.raises(InvalidInput):
        LinUCB(["a", "b"], features=[])
    with pytest.raises(NotFound):
        BetaThompson(["a", "b"]).update("z", 1.0)
    with pytest.raises(InvalidInput):
        BetaThompson(["a", "b"]).update("a", float("nan"))


def test_thompson_beats_epsilon_greedy_and_random_in_a_short_simulation() -> None:
    ts = simulate_regret("thompson", horizon=5000, replications=8, seed=1).mean
    eps = simulate_regret("epsilon_greedy", horizon=5000, replications=8, seed=1).mean
    rnd = simulate_regret("random", horizon=5000, replications=8, seed=1).mean
    assert ts < eps < rnd


def test_simulation_refuses_bad_parameters() -> None:
    with pytest.raises(InvalidInput):
        simulate_regret("thompson", rates=[0.5], horizon=10)
    with pytest.raises(InvalidInput):
        simulate_regret("softmax", horizon=10)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda: BetaThompson(ARMS, seed=0),
        lambda: GaussianThompson(ARMS, seed=0),
        lambda: EpsilonGreedy(ARMS, seed=0),
        lambda: UCB1(ARMS, seed=0),
    ],
)
def test_replaying_a_log_in_one_batch_equals_learning_one_by_one(make: Any) -> None:
    rng = np.random.default_rng(9)
    indices = rng.integers(0, 3, 500)
    rewards = rng.random(500).round(2)
    batch, loop = make(), make()
    batch.learn_batch(indices, rewards)
    for index, reward in zip(indices, rewards, strict=True):
        loop.update(ARMS[index], float(reward))
    got, want = batch.state(), loop.state()
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key])
    with pytest.raises(InvalidInput):
        batch.learn_batch([0, 5], [1.0, 1.0])
