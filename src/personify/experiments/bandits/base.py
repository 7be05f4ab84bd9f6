"""The bandit policy contract: choose an arm, say with which probability, learn from rewards.

Every policy answers :meth:`BanditPolicy.probabilities` (the full action distribution for a
context) and :meth:`BanditPolicy.choose` draws from exactly that distribution, so the logged
propensity is the true probability of the logged action. That is what makes off-policy
evaluation (:mod:`personify.experiments.ope`) possible later.

Two guards apply to every policy, in the base class:

* **burn-in**: until every arm has ``burn_in`` observations the split is uniform, so an early
  lucky streak cannot starve an arm before anything is known;
* **minimum exploration weight**: every arm keeps at least ``min_weight`` of the traffic,
  ``p' = min_weight + (1 - K min_weight) p``, which bounds importance weights by
  ``1 / min_weight`` and keeps detecting a change in the world possible.

Policies follow the estimator habit: ``__init__`` stores parameters, learned state ends in
``_``; :meth:`state` / :meth:`load_state` round-trip the learned state as JSON.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from personify.errors import InvalidInput, NotFound, Problem

Context = Mapping[str, Any]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Choice:
    """The chosen arm, its propensity and the whole distribution it was drawn from."""

    arm: str
    index: int
    propensity: float
    probabilities: tuple[float, ...]


def validate_arms(arms: Sequence[str], min_weight: float, burn_in: int) -> list[Problem]:
    problems: list[Problem] = []
    if len(arms) < 2:
        problems.append(Problem("arms", "a bandit needs at least two arms"))
    if len(set(arms)) != len(arms):
        problems.append(Problem("arms", "arm names must be unique"))
    if not 0 <= min_weight * max(len(arms), 1) <= 1:
        problems.append(Problem("min_weight", "must be between 0 and 1 / number of arms"))
    if burn_in < 0:
        problems.append(Problem("burn_in", "must be >= 0"))
    return problems


class BanditPolicy(ABC):
    """Base class: arms, guards, drawing and bookkeeping; subclasses give the raw distribution."""

    name = "bandit"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        min_weight: float = 0.0,
        burn_in: int = 0,
        seed: int | None = None,
    ) -> None:
        problems = validate_arms(arms, min_weight, burn_in)
        if problems:
            raise InvalidInput(
                f"invalid {self.name} policy",
                hint="give two or more distinct arms and a min_weight below 1 / arms",
                problems=problems,
            )
        self.arms = list(arms)
        self.min_weight = min_weight
        self.burn_in = burn_in
        self.seed = seed
        self.rng_ = np.random.default_rng(seed)
        self.pulls_ = np.zeros(len(self.arms))

    @property
    def n_arms(self) -> int:
        return len(self.arms)

    def index_of(self, arm: str) -> int:
        try:
            return self.arms.index(arm)
        except ValueError:
            raise NotFound(
                f"{arm!r} is not an arm of this policy",
                hint=f"use one of: {', '.join(self.arms)}",
            ) from None

    @abstractmethod
    def raw_probabilities(self, context: Context | None = None) -> FloatArray:
        """The policy's own action distribution, before burn-in and the exploration floor."""

    @abstractmethod
    def learn(self, index: int, reward: float, context: Context | None = None) -> None:
        """Update the learned state with one reward for arm ``index``."""

    def probabilities(self, context: Context | None = None) -> FloatArray:
        """The distribution :meth:`choose` draws from (burn-in and floor applied)."""
        if self.burn_in and self.pulls_.min() < self.burn_in:
            return np.full(self.n_arms, 1 / self.n_arms)
        p = self.raw_probabilities(context)
        if self.min_weight:
            p = self.min_weight + (1 - self.n_arms * self.min_weight) * p
        return np.asarray(p / p.sum(), dtype=np.float64)

    def choose(self, context: Context | None = None) -> Choice:
        """Draw an arm from :meth:`probabilities`; the propensity is that arm's probability."""
        p = self.probabilities(context)
        index = int(self.rng_.choice(self.n_arms, p=p))
        return Choice(self.arms[index], index, float(p[index]), tuple(float(x) for x in p))

    def update(self, arm: str, reward: float, context: Context | None = None) -> None:
        """Record an observed reward for ``arm`` (from an attributed event)."""
        index = self.index_of(arm)
        if not np.isfinite(reward):
            raise InvalidInput(
                "a reward must be a finite number",
                hint="send 0/1 for clicks, an amount for revenue",
                problems=[Problem("reward", "not finite")],
            )
        self.pulls_[index] += 1
        self.learn(index, float(reward), context)

    def learn_batch(self, indices: npt.ArrayLike, rewards: npt.ArrayLike) -> None:
        """Learn many context-free rewards at once (replaying a log); same result as a loop."""
        idx = np.asarray(indices, dtype=np.int64)
        values = np.asarray(rewards, dtype=np.float64)
        if idx.shape != values.shape or (idx.size and (idx.min() < 0 or idx.max() >= self.n_arms)):
            raise InvalidInput(
                "arm indices and rewards must align and name existing arms",
                hint="pass one arm index and one reward per logged decision",
                problems=[Problem("indices", "out of range or misaligned")],
            )
        if not np.isfinite(values).all():
            raise InvalidInput(
                "a reward must be a finite number",
                hint="send 0/1 for clicks, an amount for revenue",
                problems=[Problem("reward", "not finite")],
            )
        self.pulls_ += np.bincount(idx, minlength=self.n_arms)
        self.learn_arrays(idx, values)

    def learn_arrays(self, indices: npt.NDArray[np.int64], rewards: FloatArray) -> None:
        """Vectorised :meth:`learn`; policies with per-arm sums override this loop."""
        for index, reward in zip(indices.tolist(), rewards.tolist(), strict=True):
            self.learn(index, reward)

    def credit(self, arm: str, reward: float, context: Context | None = None) -> None:
        """Add a late reward to a decision already counted by ``update(arm, 0.0)``.

        Serving counts each decision as a zero reward when it is made and credits the click
        or the order when (if) it arrives, so arms are not over-rated while rewards are
        still in flight.
        """
        index = self.index_of(arm)
        if not np.isfinite(reward):
            raise InvalidInput(
                "a reward must be a finite number",
                hint="send 0/1 for clicks, an amount for revenue",
                problems=[Problem("reward", "not finite")],
            )
        self.add_late_reward(index, float(reward), context)

    @abstractmethod
    def add_late_reward(self, index: int, reward: float, context: Context | None = None) -> None:
        """Turn one zero reward already learned for arm ``index`` into ``reward``."""

    def state(self) -> dict[str, Any]:
        """The learned state as plain JSON values (stored between processes)."""
        return {"pulls": self.pulls_.tolist()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.pulls_ = np.asarray(state["pulls"], dtype=float)


def argmax_split(scores: FloatArray) -> FloatArray:
    """A distribution putting equal mass on every arm tied for the best score."""
    best = scores == scores.max()
    return np.asarray(best / best.sum(), dtype=np.float64)
