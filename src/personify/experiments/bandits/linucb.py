"""LinUCB (disjoint): a contextual bandit over profile and context features.

Each arm keeps a ridge regression of reward on the feature vector ``x`` (``A = I + sum x x^T``,
``b = sum r x``); its score is ``theta^T x + alpha sqrt(x^T A^-1 x)`` with ``theta = A^-1 b``
(Li, Chu, Langford & Schapire, 2010). Features are read by name from the context mapping
(numbers as they are, booleans as 0/1, missing as 0) plus a constant term, so a rule such as
"mobile visitors prefer the short banner" can be learned.

The best score is deterministic; ``min_weight`` (default 0.02 per arm) keeps every arm
possible so the propensities logged with each choice allow off-policy evaluation.

>>> policy = LinUCB(["short", "long"], features=["mobile"], seed=0)
>>> for _ in range(300):
...     policy.update("short", 1.0, {"mobile": 1}); policy.update("long", 0.0, {"mobile": 1})
...     policy.update("short", 0.0, {"mobile": 0}); policy.update("long", 1.0, {"mobile": 0})
>>> policy.choose({"mobile": 1}).arm, policy.choose({"mobile": 0}).arm
('short', 'long')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from personify.errors import InvalidInput, Problem
from personify.experiments.bandits.base import BanditPolicy, Context, FloatArray, argmax_split


class LinUCB(BanditPolicy):
    """Disjoint LinUCB with a minimum exploration weight (see the module docstring)."""

    name = "linucb"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        features: Sequence[str],
        alpha: float = 1.0,
        min_weight: float = 0.02,
        burn_in: int = 0,
        seed: int | None = None,
    ) -> None:
        if not features:
            raise InvalidInput(
                "LinUCB needs at least one feature",
                hint="name profile or context fields, e.g. ['device_mobile', 'orders']",
                problems=[Problem("features", "must not be empty")],
            )
        super().__init__(arms, min_weight=min_weight, burn_in=burn_in, seed=seed)
        self.features = list(features)
        self.alpha = alpha
        d = len(self.features) + 1
        self.a_inv_ = np.stack([np.eye(d) for _ in self.arms])
        self.b_ = np.zeros((self.n_arms, d))

    def vector(self, context: Context | None) -> FloatArray:
        """The feature vector of a context: named fields as floats, then a constant 1."""
        values = []
        for name in self.features:
            raw = (context or {}).get(name, 0)
            if isinstance(raw, bool):
                raw = float(raw)
            values.append(float(raw) if isinstance(raw, int | float) else 0.0)
        return np.asarray([*values, 1.0], dtype=np.float64)

    def raw_probabilities(self, context: Context | None = None) -> FloatArray:
        x = self.vector(context)
        theta = np.einsum("kij,kj->ki", self.a_inv_, self.b_)
        spread = np.sqrt(np.maximum(np.einsum("i,kij,j->k", x, self.a_inv_, x), 0.0))
        return argmax_split(theta @ x + self.alpha * spread)

    def learn(self, index: int, reward: float, context: Context | None = None) -> None:
        x = self.vector(context)
        a_inv = self.a_inv_[index]
        ax = a_inv @ x
        # Sherman-Morrison: (A + x x^T)^-1 without a matrix inversion per reward
        self.a_inv_[index] = a_inv - np.outer(ax, ax) / (1.0 + x @ ax)
        self.b_[index] += reward * x

    def add_late_reward(self, index: int, reward: float, context: Context | None = None) -> None:
        self.b_[index] += reward * self.vector(context)

    def state(self) -> dict[str, Any]:
        return {**super().state(), "a_inv": self.a_inv_.tolist(), "b": self.b_.tolist()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        self.a_inv_ = np.asarray(state["a_inv"], dtype=float)
        self.b_ = np.asarray(state["b"], dtype=float)
