"""Decide what each person sees: content, placements, rules, policies and the decision log.

* :mod:`~personify.decide.content` — content items with per-channel variants and sandboxed
  templates (:mod:`~personify.decide.templates`);
* :mod:`~personify.decide.placements` — named slots and their candidates;
* :mod:`~personify.decide.rules` — ordered, versioned rules per placement, in the segments'
  condition language;
* :mod:`~personify.decide.policies` — the :class:`Policy` interface (rules, model-scored
  ranking, fallback; experiments and bandits plug in);
* :mod:`~personify.decide.engine` — the decision path (caps, dismissals, rendering, logging);
* :mod:`~personify.decide.log` and :mod:`~personify.decide.attribution` — decisions, rewards
  and the per-content report;
* :mod:`~personify.decide.service` — deciding by identity (HTTP, CLI and Python API).

``DEMO_WORKSPACE`` is the demo storefront's content, placements and rules
(``personify apply`` it after ``personify demo``).
"""

from pathlib import Path
from typing import Final

from personify.decide.engine import Decision, DecisionEngine
from personify.decide.policies import Choice, Policy, PolicyRequest, Reason

DEMO_WORKSPACE: Final = Path(__file__).with_name("demo_workspace.yaml")

__all__ = [
    "DEMO_WORKSPACE",
    "Choice",
    "Decision",
    "DecisionEngine",
    "Policy",
    "PolicyRequest",
    "Reason",
]
