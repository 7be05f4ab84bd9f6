"""The document a condition is evaluated against: one shape for segments, rules and targeting.

Conditions address a profile by dotted paths into this document::

    {"profile_id": "p_...",
     "traits":   {"first_name": "Ada", "plan": "pro", ...},      # trait values only
     "computed": {"orders": 3, "revenue": 120.5, "lifecycle_stage": "active", ...},
     "scores":   {"churn": 0.81, "propensity": 0.2, ...},         # model outputs
     "segments": ["high_value", "cart_abandoner"],                 # current memberships
     "consent":  {"personalization": true, ...},
     "context":  {"channel": "web", "page": "/", "device": "mobile", ...}}   # request only

so ``{"traits.plan": "pro"}``, ``{"scores.churn": {"$gt": 0.7}}`` and
``{"segments": {"$elemMatch": {"$eq": "high_value"}}}`` read the same in a segment, a decision
rule and an experiment's targeting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROOTS = ("profile_id", "traits", "computed", "scores", "segments", "consent", "context")


def condition_document(
    view: Mapping[str, Any], context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Flatten a profile view (``Personify.profile``) into the condition document."""
    traits = view.get("traits") or {}
    scores = view.get("scores") or {}
    return {
        "profile_id": view.get("profile_id"),
        "traits": {
            name: (t.get("value") if isinstance(t, Mapping) and "value" in t else t)
            for name, t in traits.items()
        },
        "computed": dict(view.get("computed") or {}),
        "scores": {
            name: (s.get("value") if isinstance(s, Mapping) else s) for name, s in scores.items()
        },
        "segments": list(view.get("segments") or []),
        "consent": dict(view.get("consent") or {}),
        "context": dict(context or {}),
    }
