"""Policies: one small interface (:class:`Policy`), one module per way of choosing."""

from personify.decide.policies.base import Choice, Policy, PolicyRequest, Reason
from personify.decide.policies.fallback import Fallback
from personify.decide.policies.ranking import Scorer, ScoreRanking

__all__ = ["Choice", "Fallback", "Policy", "PolicyRequest", "Reason", "ScoreRanking", "Scorer"]
