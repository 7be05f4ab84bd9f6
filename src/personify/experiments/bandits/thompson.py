"""Thompson sampling: route traffic in proportion to the chance each arm is the best.

* :class:`BetaThompson` for 0/1 rewards (clicks, conversions): Beta(1 + successes,
  1 + failures) posteriors.
* :class:`GaussianThompson` for amounts (revenue): a normal posterior on each arm's mean,
  ``N(mean, variance / n)``, with a weak normal prior that dominates only the first few
  observations.

Serving draws an arm from the estimated probability of being best (``draws`` joint posterior
samples), not from a single posterior sample: both give the same distribution, but only the
former yields the propensity to log.

>>> policy = BetaThompson(["a", "b"], seed=1, min_weight=0.05)
>>> for _ in range(200):
...     policy.update("b", 1.0); policy.update("a", 0.0)
>>> round(float(policy.probabilities()[1]), 2)
0.95
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from personify.experiments.bandits.base import BanditPolicy, Context, FloatArray
from personify.experiments.bandits.kernels import beta_thompson_probabilities


class BetaThompson(BanditPolicy):
    """Beta-Bernoulli Thompson sampling with burn-in and a minimum exploration weight."""

    name = "thompson_beta"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        min_weight: float = 0.01,
        burn_in: int = 0,
        draws: int = 2000,
        prior: float = 1.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(arms, min_weight=min_weight, burn_in=burn_in, seed=seed)
        self.draws = draws
        self.prior = prior
        self.successes_ = np.zeros(self.n_arms)
        self.failures_ = np.zeros(self.n_arms)

    def raw_probabilities(self, context: Context | None = None) -> FloatArray:
        return beta_thompson_probabilities(
            self.successes_, self.failures_, self.rng_, self.draws, self.prior
        )

    def learn(self, index: int, reward: float, context: Context | None = None) -> None:
        # a reward in [0, 1] counts as a fractional success (clipped: clicks are 0/1)
        value = min(1.0, max(0.0, reward))
        self.successes_[index] += value
        self.failures_[index] += 1 - value

    def learn_arrays(self, indices: npt.NDArray[np.int64], rewards: FloatArray) -> None:
        values = np.clip(rewards, 0.0, 1.0)
        self.successes_ += np.bincount(indices, weights=values, minlength=self.n_arms)
        self.failures_ += np.bincount(indices, weights=1 - values, minlength=self.n_arms)

    def add_late_reward(self, index: int, reward: float, context: Context | None = None) -> None:
        value = min(1.0, max(0.0, reward))
        self.successes_[index] += value
        self.failures_[index] = max(0.0, self.failures_[index] - value)

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "successes": self.successes_.tolist(),
            "failures": self.failures_.tolist(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        self.successes_ = np.asarray(state["successes"], dtype=float)
        self.failures_ = np.asarray(state["failures"], dtype=float)


class GaussianThompson(BanditPolicy):
    """Thompson sampling on arm means for continuous rewards (revenue per decision)."""

    name = "thompson_gaussian"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        min_weight: float = 0.01,
        burn_in: int = 0,
        draws: int = 2000,
        prior_mean: float = 0.0,
        prior_variance: float = 1.0e4,
        seed: int | None = None,
    ) -> None:
        super().__init__(arms, min_weight=min_weight, burn_in=burn_in, seed=seed)
        self.draws = draws
        self.prior_mean = prior_mean
        self.prior_variance = prior_variance
        self.sums_ = np.zeros(self.n_arms)
        self.sum_squares_ = np.zeros(self.n_arms)

    def posterior(self) -> tuple[FloatArray, FloatArray]:
        """Posterior mean and variance of each arm's mean reward."""
        n = self.pulls_
        safe_n = np.maximum(n, 1)
        mean = self.sums_ / safe_n
        var = np.where(
            n > 1, (self.sum_squares_ - self.sums_**2 / safe_n) / np.maximum(n - 1, 1), 1.0
        )
        var = np.maximum(var, 1e-12)
        precision = 1 / self.prior_variance + n / var
        post_mean = (self.prior_mean / self.prior_variance + n * mean / var) / precision
        return post_mean, 1 / precision

    def raw_probabilities(self, context: Context | None = None) -> FloatArray:
        mean, variance = self.posterior()
        samples = self.rng_.normal(mean, np.sqrt(variance), size=(self.draws, self.n_arms))
        counts = np.bincount(samples.argmax(axis=1), minlength=self.n_arms)
        return np.asarray(counts / self.draws, dtype=np.float64)

    def learn(self, index: int, reward: float, context: Context | None = None) -> None:
        self.sums_[index] += reward
        self.sum_squares_[index] += reward * reward

    def learn_arrays(self, indices: npt.NDArray[np.int64], rewards: FloatArray) -> None:
        self.sums_ += np.bincount(indices, weights=rewards, minlength=self.n_arms)
        self.sum_squares_ += np.bincount(indices, weights=rewards**2, minlength=self.n_arms)

    def add_late_reward(self, index: int, reward: float, context: Context | None = None) -> None:
        self.learn(index, reward, context)  # 0 -> reward: sum and sum of squares both grow

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "sums": self.sums_.tolist(),
            "sum_squares": self.sum_squares_.tolist(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        self.sums_ = np.asarray(state["sums"], dtype=float)
        self.sum_squares_ = np.asarray(state["sum_squares"], dtype=float)
