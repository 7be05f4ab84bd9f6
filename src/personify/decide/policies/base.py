"""The policy interface: given a placement, its eligible candidates and who is asking, choose.

Every way of choosing content implements :class:`Policy` — first matching rule, model-scored
ranking, the fallback, and (in :mod:`personify.experiments`) experiments and bandits. A policy
returns a :class:`Choice` with the **propensity** (the probability this policy had of choosing
that content for this request: 1.0 for deterministic ones, the arm probability for a bandit),
so logged decisions support unbiased off-policy evaluation, and **reasons** a person can read.
A policy that has no opinion returns ``None`` and the engine asks the next one.

Policies are registered on the engine by name (``engine.register_policy("hero_test", p)``);
a rule with ``use: hero_test`` hands the decision to it, so targeting and experiments compose.
Rewards come back through the decision log (see :mod:`personify.decide.log`), keyed by the
``decision_id``, with the policy name and propensity recorded beside each decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from personify.decide.placements import Placement


@dataclass(frozen=True)
class Reason:
    """Why something was (or was not) chosen, for people and for logs.

    ``type`` is one of ``rule``, ``score``, ``policy``, ``fallback``, ``cap``, ``dismissed``,
    ``render``, ``visitor`` and ``consent``; ``details`` holds the machine-readable facts (rule
    id, scores).
    """

    type: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, **self.details}


@dataclass(frozen=True)
class PolicyRequest:
    """What a policy may look at. ``candidates`` are already filtered by caps and dismissals,
    in the placement's order; ``excluded`` says why the others were removed."""

    placement: Placement
    candidates: tuple[str, ...]
    document: Mapping[str, Any]
    context: Mapping[str, Any]
    #: a stable id for the person (profile id, else ``anon:<anonymousId>``), for sticky
    #: assignment; ``None`` when the caller sent no identity at all.
    unit: str | None
    excluded: Mapping[str, str] = field(default_factory=dict)
    #: reasons a policy gives when it passes (returns ``None``), e.g. "no candidate has a
    #: score"; the engine reports them before the final choice's reasons.
    notes: list[Reason] = field(default_factory=list)

    def narrowed(self, keep: tuple[str, ...]) -> PolicyRequest:
        """The same request with fewer candidates (a rule's ``among`` or ``exclude``)."""
        return PolicyRequest(
            self.placement, keep, self.document, self.context, self.unit, self.excluded, self.notes
        )


@dataclass(frozen=True)
class Choice:
    """A policy's answer: the content key (``None``: show nothing), how sure, and why."""

    content: str | None
    policy: str
    propensity: float
    reasons: tuple[Reason, ...]
    #: a variant (channel) to render instead of the placement's channel, e.g. an experiment arm
    variant: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Policy(Protocol):
    """Chooses content for one placement request, or returns ``None`` to pass."""

    name: str

    def choose(self, request: PolicyRequest) -> Choice | None: ...
