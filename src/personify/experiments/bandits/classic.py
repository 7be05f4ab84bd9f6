"""Epsilon-greedy and UCB1: the classic baselines, with exact propensities.

* :class:`EpsilonGreedy`: the best observed mean gets ``1 - epsilon`` (split among ties),
  and every arm gets ``epsilon / K``; untried arms are tried first.
* :class:`UCB1`: the arm with the highest upper confidence bound ``mean + sqrt(2 ln t / n)``.
  It is deterministic, so its propensities are 0 or 1 unless ``min_weight`` keeps a floor;
  give it one if its logs will be used for off-policy evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from personify.errors import InvalidInput, Problem
from personify.experiments.bandits.base import BanditPolicy, Context, FloatArray, argmax_split
from personify.experiments.bandits.kernels import ucb1_scores


class _MeanTracker(BanditPolicy):
    """Shared state: the running sum of rewards per arm."""

    def __init__(
        self,
        arms: Sequence[str],
        *,
        min_weight: float = 0.0,
        burn_in: int = 0,
        seed: int | None = None,
    ) -> None:
        super().__init__(arms, min_weight=min_weight, burn_in=burn_in, seed=seed)
        self.sums_ = np.zeros(self.n_arms)

    @property
    def means(self) -> FloatArray:
        return np.asarray(self.sums_ / np.maximum(self.pulls_, 1), dtype=np.float64)

    def learn(self, index: int, reward: float, context: Context | None = None) -> None:
        self.sums_[index] += reward

    def learn_arrays(self, indices: npt.NDArray[np.int64], rewards: FloatArray) -> None:
        self.sums_ += np.bincount(indices, weights=rewards, minlength=self.n_arms)

    def add_late_reward(self, index: int, reward: float, context: Context | None = None) -> None:
        self.sums_[index] += reward

    def state(self) -> dict[str, Any]:
        return {**super().state(), "sums": self.sums_.tolist()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        self.sums_ = np.asarray(state["sums"], dtype=float)


class EpsilonGreedy(_MeanTracker):
    """Exploit the best mean, explore uniformly with probability ``epsilon``."""

    name = "epsilon_greedy"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        epsilon: float = 0.1,
        min_weight: float = 0.0,
        burn_in: int = 0,
        seed: int | None = None,
    ) -> None:
        if not 0 <= epsilon <= 1:
            raise InvalidInput(
                "epsilon must be between 0 and 1",
                hint="0.1 explores 10% of the traffic",
                problems=[Problem("epsilon", "must be in [0, 1]")],
            )
        super().__init__(arms, min_weight=min_weight, burn_in=burn_in, seed=seed)
        self.epsilon = epsilon

    def raw_probabilities(self, context: Context | None = None) -> FloatArray:
        untried = self.pulls_ == 0
        scores = np.where(untried, np.inf, self.means)
        greedy = argmax_split(scores)
        return np.asarray((1 - self.epsilon) * greedy + self.epsilon / self.n_arms)


class UCB1(_MeanTracker):
    """Optimism in the face of uncertainty: pick the highest upper confidence bound."""

    name = "ucb1"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        c: float = 2.0,
        min_weight: float = 0.0,
        burn_in: int = 0,
        seed: int | None = None,
    ) -> None:
        super().__init__(arms, min_weight=min_weight, burn_in=burn_in, seed=seed)
        self.c = c

    def raw_probabilities(self, context: Context | None = None) -> FloatArray:
        scores = ucb1_scores(self.means, self.pulls_, float(self.pulls_.sum()), self.c)
        return argmax_split(scores)
