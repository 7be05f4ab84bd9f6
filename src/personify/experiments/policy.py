"""Experiments and bandits as decision policies on a placement.

Each class implements :class:`personify.decide.policies.base.Policy` (``name`` and
``choose(request) -> Choice | None``), so the decision engine runs them like rules or
rankings, logs the decision with its propensity, and routes rewards back by
``decision_id``:

* :class:`ExperimentPolicy`: an A/B/n or multivariate test. The visitor is hashed into a
  variant (GrowthBook semantics, sticky across login); the variant shows a content item or
  hands the decision to another policy ("rules" vs "model ranking"). The first exposure per
  unit is written to the :class:`~.exposures.ExposureLog`. Draft and stopped tests pass;
  a shipped test shows the shipped variant to everyone.
* :class:`HoldoutPolicy`: a global holdout; units hashed into it get the placement's
  default (no personalization) and everyone's group is logged as an exposure, so the value of
  personalization as a whole can be measured.
* :class:`BanditPlacementPolicy`: a bandit whose arms are content items; the logged
  propensity is the arm's probability among the eligible candidates.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from personify.decide.policies.base import Choice, Policy, PolicyRequest, Reason
from personify.errors import InvalidInput, NotFound, Problem
from personify.experiments.assignment import AssignmentContext, run
from personify.experiments.bandits.base import BanditPolicy
from personify.experiments.bandits.classic import UCB1, EpsilonGreedy
from personify.experiments.bandits.linucb import LinUCB
from personify.experiments.bandits.thompson import BetaThompson, GaussianThompson
from personify.experiments.definitions import ExperimentDef, VariantDef
from personify.experiments.exposures import ExposureLog
from personify.experiments.hashing import gb_hash
from personify.experiments.sticky import StickyStore

Clock = Callable[[], float]
Identities = Callable[[str], Mapping[str, Sequence[str]]]
"""``profile id -> {identity kind: values}`` (``Personify.profile(...)["identities"]``)."""
STICKY_ATTRIBUTES = ("id", "user_id", "anonymous_id")


def visitor_attributes(request: PolicyRequest) -> dict[str, Any]:
    """What targeting and hashing see: the profile document, the context, and ``id`` (the unit).

    ``user_id`` and ``anonymous_id`` are lifted from the document's identities or the context
    when present, so sticky assignments can follow a visitor who logs in.
    """
    attributes: dict[str, Any] = {**request.document, "context": dict(request.context)}
    attributes["id"] = request.unit
    for name in ("user_id", "anonymous_id"):
        value = request.context.get(name) or request.document.get(name)
        identities = request.document.get("identities")
        if not value and isinstance(identities, Mapping):
            found = identities.get(name)
            value = found[0] if isinstance(found, list) and found else found
        if value:
            attributes[name] = value
    return attributes


class ExperimentPolicy:
    """An A/B/n or multivariate experiment on one placement (see the module docstring)."""

    def __init__(
        self,
        experiment: ExperimentDef,
        *,
        delegates: Mapping[str, Policy] | None = None,
        exposures: ExposureLog | None = None,
        sticky: StickyStore | None = None,
        identities: Identities | None = None,
        clock: Clock = time.time,
    ) -> None:
        if experiment.type == "bandit":
            raise InvalidInput(
                f"{experiment.key!r} is a bandit",
                hint="serve it with BanditPlacementPolicy",
                problems=[Problem("type", "bandit")],
            )
        missing = [
            v.policy for v in experiment.variants if v.policy and v.policy not in (delegates or {})
        ]
        if missing:
            raise InvalidInput(
                f"experiment {experiment.key!r} names policies that are not registered",
                hint="register the strategies the variants use (e.g. 'rules', 'ranking')",
                problems=[Problem("variants", f"unknown policy {name!r}") for name in missing],
            )
        self.name = experiment.key
        self.experiment = experiment
        self._delegates = dict(delegates or {})
        self._exposures = exposures
        self._sticky = sticky
        self._identities = identities
        self._clock = clock

    def _show(
        self, request: PolicyRequest, variant: VariantDef, propensity: float, why: Reason
    ) -> Choice | None:
        details = {"experiment": self.experiment.key, "variant": variant.key}
        if variant.policy is not None:
            inner = self._delegates[variant.policy].choose(request)
            if inner is None:
                request.notes.append(
                    Reason("policy", f"variant {variant.key!r}: strategy {variant.policy!r} passed")
                )
                return None
            return Choice(
                inner.content,
                self.name,
                propensity * inner.propensity,
                (why, *inner.reasons),
                inner.variant,
                {**inner.details, **details, "strategy": variant.policy},
            )
        if variant.content not in request.candidates:
            why_not = request.excluded.get(variant.content or "", "not a candidate")
            request.notes.append(
                Reason(
                    "policy", f"variant {variant.key!r} content {variant.content!r} is {why_not}"
                )
            )
            return None
        return Choice(variant.content, self.name, propensity, (why,), details=details)

    def _earlier_units(self, unit: str) -> list[tuple[str, str]]:
        """The anonymous units a profile was decided for before it was known (``anon:<id>``).

        An anonymous visitor is bucketed as ``anon:<anonymousId>``; once they log in, the
        unit becomes their profile id, so the sticky lookup must also try the old unit.
        """
        if self._sticky is None or self._identities is None or unit.startswith("anon:"):
            return []
        try:
            known = self._identities(unit)
        except NotFound:
            return []
        return [("id", f"anon:{value}") for value in known.get("anonymous_id") or ()]

    def choose(self, request: PolicyRequest) -> Choice | None:
        exp = self.experiment
        if exp.status == "shipped" and exp.shipped is not None:
            variant = exp.variant(exp.shipped)
            why = Reason("policy", f"experiment {exp.key!r} shipped {variant.key!r} to everyone")
            return self._show(request, variant, 1.0, why)
        if exp.status != "running":
            request.notes.append(Reason("policy", f"experiment {exp.key!r} is {exp.status}"))
            return None
        if request.unit is None:
            request.notes.append(Reason("policy", f"experiment {exp.key!r}: no visitor id"))
            return None
        result = run(
            exp.spec,
            AssignmentContext(
                attributes=visitor_attributes(request),
                sticky_store=self._sticky,
                sticky_attributes=STICKY_ATTRIBUTES,
                sticky_ids=self._earlier_units(request.unit),
            ),
        )
        if not result.in_experiment:
            request.notes.append(
                Reason("policy", f"not in experiment {exp.key!r} (targeting or coverage)")
            )
            return None
        variant = exp.variants[result.variation_id]
        why = Reason(
            "policy",
            f"experiment {exp.key!r}: variant {variant.key!r} ({variant.weight:.0%} of traffic)",
            {"experiment": exp.key, "variant": variant.key, "sticky": result.sticky_used},
        )
        choice = self._show(request, variant, variant.weight, why)
        if choice is not None and self._exposures is not None:
            self._exposures.record(exp.key, request.unit, variant.key, self._clock())
        return choice


class HoldoutPolicy:
    """A global holdout: a fixed share of units never sees personalization."""

    name = "holdout"

    def __init__(
        self,
        share: float,
        *,
        seed: str = "global_holdout",
        exposures: ExposureLog | None = None,
        clock: Clock = time.time,
    ) -> None:
        if not 0 <= share < 1:
            raise InvalidInput(
                "the holdout share must be at least 0 and below 1",
                hint="5% is common: share 0.05",
                problems=[Problem("share", "must be in [0, 1)")],
            )
        self.name = seed
        self.share = share
        self.seed = seed
        self._exposures = exposures
        self._clock = clock

    def in_holdout(self, unit: str) -> bool:
        n = gb_hash(self.seed, unit, 2)
        return n is not None and n < self.share

    def choose(self, request: PolicyRequest) -> Choice | None:
        if request.unit is None:
            return None
        held = self.in_holdout(request.unit)
        if self._exposures is not None:
            group = "holdout" if held else "personalized"
            self._exposures.record(self.seed, request.unit, group, self._clock())
        if not held:
            return None
        default = request.placement.default
        content = default if default in request.candidates else (request.candidates or (None,))[0]
        why = Reason(
            "policy",
            f"in the global holdout {self.seed!r} ({self.share:.0%}): no personalization",
            {"experiment": self.seed, "variant": "holdout"},
        )
        return Choice(
            content, self.name, 1.0, (why,), details={"experiment": self.seed, "variant": "holdout"}
        )


def build_bandit(experiment: ExperimentDef, *, seed: int | None = None) -> BanditPolicy:
    """The bandit a ``type: bandit`` definition asks for, arms named by variant key."""
    arms = [v.key for v in experiment.variants]
    options = dict(experiment.options)
    common: dict[str, Any] = {"seed": seed, "burn_in": int(options.get("burn_in", 0))}
    if "min_weight" in options:
        common["min_weight"] = float(options["min_weight"])
    if experiment.algorithm == "thompson":
        return BetaThompson(arms, **common)
    if experiment.algorithm == "gaussian_thompson":
        return GaussianThompson(arms, **common)
    if experiment.algorithm == "epsilon_greedy":
        return EpsilonGreedy(arms, epsilon=float(options.get("epsilon", 0.1)), **common)
    if experiment.algorithm == "ucb1":
        return UCB1(arms, **common)
    return LinUCB(arms, features=list(options.get("features") or []), **common)


def _lookup(document: Mapping[str, Any], path: str) -> Any:
    node: Any = document
    for step in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(step)
    return node


class BanditPlacementPolicy:
    """A bandit over content items on a placement, with logged propensities."""

    def __init__(
        self,
        experiment: ExperimentDef,
        bandit: BanditPolicy | None = None,
        *,
        exposures: ExposureLog | None = None,
        clock: Clock = time.time,
        seed: int | None = None,
        count_at_decision: bool = True,
    ) -> None:
        self.name = experiment.key
        self.count_at_decision = count_at_decision
        self.experiment = experiment
        self.bandit = bandit or build_bandit(experiment, seed=seed)
        self._content = {v.key: v.content for v in experiment.variants}
        self._exposures = exposures
        self._clock = clock
        self._lock = threading.Lock()

    def features(self, request: PolicyRequest) -> dict[str, Any]:
        """Named features for a contextual bandit, read as dotted paths of document and context."""
        names = self.bandit.features if isinstance(self.bandit, LinUCB) else []
        source = visitor_attributes(request)
        return {name: _lookup(source, name) for name in names}

    def choose(self, request: PolicyRequest) -> Choice | None:
        if self.experiment.status != "running":
            request.notes.append(
                Reason("policy", f"bandit {self.name!r} is {self.experiment.status}")
            )
            return None
        eligible = np.array([self._content[arm] in request.candidates for arm in self.bandit.arms])
        if not eligible.any():
            request.notes.append(Reason("policy", f"bandit {self.name!r}: no arm is eligible"))
            return None
        features = self.features(request)
        with self._lock:
            p = self.bandit.probabilities(features) * eligible
            # a deterministic policy (UCB, no floor) may put all its mass on a capped arm
            p = p / p.sum() if p.sum() > 0 else eligible / eligible.sum()
            index = int(self.bandit.rng_.choice(p.size, p=p))
        arm = self.bandit.arms[index]
        shares = {a: round(float(x), 6) for a, x in zip(self.bandit.arms, p, strict=True)}
        why = Reason(
            "policy",
            f"bandit {self.name!r} ({self.bandit.name}) chose {arm!r}, probability {p[index]:.2f}",
            {"experiment": self.name, "variant": arm, "probabilities": shares}
            | ({"features": features} if features else {}),
        )
        if self.count_at_decision:
            with self._lock:
                self.bandit.update(arm, 0.0, features)
        if self._exposures is not None and request.unit is not None:
            self._exposures.record(self.name, request.unit, arm, self._clock())
        return Choice(
            self._content[arm],
            self.name,
            float(p[index]),
            (why,),
            details={"experiment": self.name, "variant": arm, "features": features},
        )

    def reward(self, variant: str, value: float, features: Mapping[str, Any] | None = None) -> None:
        """Learn from one attributed reward for the arm ``variant`` (a click: 1.0).

        With ``count_at_decision`` (the default) the decision was already learned as a zero
        and this credits it; otherwise it is learned as a new observation.
        """
        with self._lock:
            if self.count_at_decision:
                self.bandit.credit(variant, value, features)
            else:
                self.bandit.update(variant, value, features)

    def arms(self) -> Sequence[str]:
        return list(self.bandit.arms)
