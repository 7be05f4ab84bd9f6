"""Model-scored ranking: show the candidate with the highest score for this person.

Scores come either from the profile (model outputs the scoring jobs store under ``scores``,
read through a path template per candidate, e.g. ``scores.affinity.{category}`` where
``{category}`` is the candidate's attribute and ``{key}`` its content key) or from a
:data:`Scorer` called at request time (a recommender, a propensity model held in memory).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from personify.decide.policies.base import Choice, PolicyRequest, Reason

Scorer = Callable[[Mapping[str, Any], Sequence[str]], Mapping[str, float]]
"""``(condition document, candidate keys) -> {candidate: score}`` computed at request time."""

PLACEHOLDER: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill_path(template: str, key: str, attributes: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The concrete path for one candidate, split into steps (``None``: attribute missing)."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name == "key":
            return key
        found = attributes.get(name)
        if found is None or isinstance(found, Mapping | list):
            missing = True
            return ""
        return str(found)

    path = PLACEHOLDER.sub(value, template)
    return None if missing else tuple(path.split("."))


def lookup(document: Mapping[str, Any], steps: tuple[str, ...]) -> Any:
    node: Any = document
    for step in steps:
        if not isinstance(node, Mapping):
            return None
        node = node.get(step)
    return node


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class ScoreRanking:
    """Rank by precompiled score paths, or by a request-time scorer; highest score wins.

    Ties keep the placement's order. Candidates without a numeric score (or below
    ``min_score``) are not eligible; if none is left the policy passes.
    """

    name = "ranking"

    def __init__(
        self,
        *,
        paths: Mapping[str, tuple[str, ...]] | None = None,
        scorer: Scorer | None = None,
        label: str = "model",
        min_score: float | None = None,
    ) -> None:
        if (paths is None) == (scorer is None):
            raise ValueError("give exactly one of paths or scorer")
        self._paths = paths
        self._scorer = scorer
        self._label = label
        self._min = min_score

    def _scores(self, request: PolicyRequest) -> dict[str, float]:
        out: dict[str, float] = {}
        if self._scorer is not None:
            raw = self._scorer(request.document, request.candidates)
            for key in request.candidates:
                score = _number(raw.get(key))
                if score is not None:
                    out[key] = score
            return out
        assert self._paths is not None
        for key in request.candidates:
            steps = self._paths.get(key)
            score = _number(lookup(request.document, steps)) if steps else None
            if score is not None:
                out[key] = score
        return out

    def choose(self, request: PolicyRequest) -> Choice | None:
        try:
            scores = self._scores(request)
        except Exception as exc:  # a failing model must not fail the decision
            request.notes.append(
                Reason("score", f"{self._label} scorer failed ({type(exc).__name__}: {exc})")
            )
            return None
        eligible = [k for k in request.candidates if k in scores]
        if self._min is not None:
            eligible = [k for k in eligible if scores[k] >= self._min]
        if not eligible:
            request.notes.append(
                Reason(
                    "score", f"no candidate has a usable {self._label} score", {"scores": scores}
                )
            )
            return None
        best = max(eligible, key=lambda k: scores[k])  # max keeps the first of equal scores
        top = dict(sorted(((k, scores[k]) for k in eligible), key=lambda kv: -kv[1])[:5])
        reason = Reason(
            "score",
            f"highest {self._label} score: {best!r} ({scores[best]:.3g})",
            {"scores": {k: round(v, 6) for k, v in top.items()}},
        )
        return Choice(best, self.name, 1.0, (reason,), details={"score": scores[best]})
