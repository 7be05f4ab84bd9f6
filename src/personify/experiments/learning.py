"""Bandits that learn from the decision log: the log is their state.

Every ``sync_interval`` seconds a :class:`LoggedBandit` replays its own logged decisions
with their attributed rewards (``clicked``, ``converted`` or ``revenue``, the definition's
``reward``). This works across processes (rewards are written by the event processor) and
survives restarts. Context-free bandits replay in one vectorised step; LinUCB replays row by
row with each decision's features, read from its logged reasons (the bandit writes them
there), else from the logged request context.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from personify.decide.policies.base import Choice, PolicyRequest
from personify.errors import InvalidInput
from personify.experiments.bandits.linucb import LinUCB
from personify.experiments.definitions import ExperimentDef
from personify.experiments.exposures import ExposureLog
from personify.experiments.policy import BanditPlacementPolicy, Clock, build_bandit

Outcomes = Callable[[str], list[dict[str, Any]]]
"""``policy name -> logged decisions with rewards`` (``DecisionLog.outcomes``)."""
REWARDS = ("clicked", "converted", "revenue")
OUTCOME_LIMIT = 5_000_000  # decisions replayed per bandit sync (the log's default stops at 100k)


def reward_of(outcome: Mapping[str, Any], kind: str) -> float:
    """The reward of one logged decision: clicked (0/1), converted (0/1) or revenue."""
    if kind == "revenue":
        return float(outcome.get("revenue") or 0.0)
    if kind == "converted":
        return float((outcome.get("conversions") or 0) > 0)
    return float(bool(outcome.get("clicked")))


class LoggedBandit(BanditPlacementPolicy):
    """A bandit policy whose state is rebuilt from the decision log (see the module doc)."""

    def __init__(
        self,
        experiment: ExperimentDef,
        outcomes: Outcomes,
        *,
        exposures: ExposureLog | None = None,
        clock: Clock = time.time,
        seed: int | None = None,
        sync_interval: float = 2.0,
        background: bool = False,
        decision: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__(
            experiment, exposures=exposures, clock=clock, seed=seed, count_at_decision=False
        )
        self._background = background
        self._decision = decision
        self._syncing = threading.Lock()
        reward = str(experiment.options.get("reward", "clicked"))
        if reward not in REWARDS:
            raise InvalidInput(
                f"bandit {experiment.key!r}: unknown reward {reward!r}",
                hint=f"use one of {', '.join(REWARDS)}",
            )
        self.reward_kind = reward
        self._outcomes = outcomes
        self._seed = seed
        self._sync_interval = sync_interval
        self._synced_at = float("-inf")
        self._arm_of = {v.content: v.key for v in experiment.variants}

    def sync(self) -> int:
        """Rebuild the learned state from every logged decision of this policy.

        Context-free bandits replay the log in one vectorised step; LinUCB replays it row by
        row with the features each decision was made with (from its logged reasons).
        """
        rows = [r for r in self._outcomes(self.name) if r.get("content") in self._arm_of]
        fresh = build_bandit(self.experiment, seed=self._seed)
        fresh.rng_ = self.bandit.rng_  # keep one random stream across rebuilds
        if isinstance(fresh, LinUCB):
            for row in rows:
                arm = self._arm_of[row["content"]]
                fresh.update(arm, reward_of(row, self.reward_kind), self._features(row))
        elif rows:
            index = {arm: i for i, arm in enumerate(fresh.arms)}
            fresh.learn_batch(
                [index[self._arm_of[row["content"]]] for row in rows],
                [reward_of(row, self.reward_kind) for row in rows],
            )
        with self._lock:
            self.bandit = fresh
        return len(rows)

    def _features(self, row: Mapping[str, Any]) -> Mapping[str, Any]:
        """The features a logged decision was made with (its reasons), else its context."""
        if self._decision is not None and row.get("decision_id"):
            logged = self._decision(str(row["decision_id"]))
            for reason in getattr(logged, "reasons", None) or ():
                if isinstance(reason, Mapping) and isinstance(reason.get("features"), Mapping):
                    features: Mapping[str, Any] = reason["features"]
                    return features
        context: Mapping[str, Any] = row.get("context") or {}
        return context

    def _sync_in_background(self) -> None:
        try:
            self.sync()
        finally:
            self._syncing.release()

    def choose(self, request: PolicyRequest) -> Choice | None:
        now = time.monotonic()
        if now - self._synced_at >= self._sync_interval and self._syncing.acquire(blocking=False):
            self._synced_at = now
            if self._background:
                threading.Thread(target=self._sync_in_background, daemon=True).start()
            else:
                self._sync_in_background()
        return super().choose(request)
