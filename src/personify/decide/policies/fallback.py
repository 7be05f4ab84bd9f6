"""The last word: the placement's default, else its first eligible candidate, else nothing."""

from __future__ import annotations

from personify.decide.policies.base import Choice, PolicyRequest, Reason


class Fallback:
    """Always answers, so every placement gets a decision (an unknown visitor included)."""

    name = "fallback"

    def choose(self, request: PolicyRequest) -> Choice:
        default = request.placement.default
        if default is not None and default in request.candidates:
            return Choice(
                default,
                self.name,
                1.0,
                (Reason("fallback", f"no rule decided; showing the default {default!r}"),),
            )
        if request.candidates:
            first = request.candidates[0]
            if default is None:
                why = "no default is set"
            else:
                why = f"the default {default!r} is {request.excluded.get(default, 'unavailable')}"
            return Choice(
                first,
                self.name,
                1.0,
                (Reason("fallback", f"no rule decided and {why}; showing {first!r}"),),
            )
        return Choice(
            None,
            self.name,
            1.0,
            (Reason("fallback", "nothing is eligible: every candidate is capped or dismissed"),),
        )
