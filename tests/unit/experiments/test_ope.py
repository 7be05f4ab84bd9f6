"""Off-policy estimators on synthetic logs where the true value is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personify.errors import InvalidInput
from personify.experiments.ope import doubly_robust, ipw, snipw
from personify.experiments.ope.logged import evaluate_log, parse_target

RATES = np.array([0.02, 0.05, 0.10])


def _uniform_log(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 3, n)
    rewards = (rng.random(n) < RATES[actions]).astype(float)
    return actions, rewards, np.full(n, 1 / 3)


def test_ipw_snipw_and_dr_recover_a_deterministic_policy_value() -> None:
    actions, rewards, p = _uniform_log(60_000, 0)
    target = (actions == 2).astype(float)  # always show arm 2: true value 0.10
    q = RATES[actions] * 0 + rewards.mean()  # a poor constant model: DR must still be right
    for estimate in (
        ipw(rewards, p, target),
        snipw(rewards, p, target),
        doubly_robust(rewards, p, target, q, np.full(actions.size, rewards.mean())),
    ):
        low, high = estimate.ci
        assert low < 0.10 < high
        assert estimate.value == pytest.approx(0.10, abs=0.01)


def test_dr_with_a_perfect_model_has_less_variance_than_ipw() -> None:
    actions, rewards, p = _uniform_log(20_000, 1)
    target = (actions == 1).astype(float)
    dr = doubly_robust(rewards, p, target, RATES[actions], np.full(actions.size, RATES[1]))
    plain = ipw(rewards, p, target)
    assert dr.se < plain.se


def test_zero_or_missing_propensities_are_refused_with_a_hint() -> None:
    with pytest.raises(InvalidInput) as caught:
        ipw([1.0, 0.0], [0.5, 0.0], [1.0, 1.0])
    assert "propensity" in {p.field for p in caught.value.problems}
    with pytest.raises(InvalidInput):
        ipw([1.0, 0.0], [0.5], [1.0, 1.0])
    with pytest.raises(InvalidInput):
        snipw([1.0, 0.0], [0.5, 0.5], [0.0, 0.0])


def test_decision_log_evaluation_of_shipping_one_arm() -> None:
    actions, rewards, p = _uniform_log(30_000, 2)
    log = pd.DataFrame({"action": [f"arm{a}" for a in actions], "propensity": p, "reward": rewards})
    estimates = evaluate_log(log, "arm:arm0")
    for estimate in estimates.values():
        assert estimate.value == pytest.approx(0.02, abs=0.006)
    assert evaluate_log(log, "uniform")["dr"].value == pytest.approx(RATES.mean(), abs=0.005)


def test_target_specs_are_validated() -> None:
    assert parse_target("weights:a=3,b=1", ["a", "b"]) == {"a": 0.75, "b": 0.25}
    with pytest.raises(InvalidInput):
        parse_target("arm:z", ["a", "b"])
    with pytest.raises(InvalidInput):
        parse_target("weights:a=x", ["a"])
    with pytest.raises(InvalidInput):
        parse_target("softmax", ["a"])
    with pytest.raises(InvalidInput):
        evaluate_log(pd.DataFrame({"action": ["a"]}), "uniform")
