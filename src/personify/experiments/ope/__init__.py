"""Off-policy evaluation: estimate a policy's value from logs collected by another policy."""

from personify.experiments.ope.estimators import Estimate, doubly_robust, ipw, snipw

__all__ = ["Estimate", "doubly_robust", "ipw", "snipw"]
