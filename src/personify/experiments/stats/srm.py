"""Sample-ratio mismatch: is the traffic split what the experiment asked for?

If a 50/50 test shows 1,000 versus 1,200 users, something between assignment and logging
drops or duplicates users in one arm (a redirect that loses some browsers, a bot filter, a
crash), and every metric of the test is suspect. Pearson's chi-square goodness of fit with
``k - 1`` degrees of freedom against the configured weights flags it; the usual alarm is
``p < 0.001``, strict enough that a healthy test almost never trips it.

>>> round(srm_check([1000, 1200], [0.5, 0.5]).p_value, 9)
2.0079e-05
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from personify.errors import InvalidInput, Problem

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    """Observed and expected users per arm, the chi-square p-value and whether to warn."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    p_value: float
    threshold: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.threshold

    def as_dict(self) -> dict[str, object]:
        return {
            "observed": list(self.observed),
            "expected": list(self.expected),
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "mismatch": self.mismatch,
        }


def srm_check(
    users: Sequence[int], weights: Sequence[float] | None = None, threshold: float = SRM_THRESHOLD
) -> SrmResult:
    """Chi-square test of the users per arm against ``weights`` (equal when omitted)."""
    counts = np.asarray(users, dtype=float)
    if (
        counts.ndim != 1
        or counts.size < 2
        or not np.isfinite(counts).all()
        or (counts < 0).any()
        or counts.sum() <= 0
    ):
        raise InvalidInput(
            "an SRM check needs two or more arms with non-negative user counts",
            hint="pass the number of exposed users per arm",
            problems=[Problem("users", "need >= 2 non-negative counts, not all zero")],
        )
    shares = (
        np.full(counts.size, 1 / counts.size) if weights is None else np.asarray(weights, float)
    )
    if shares.shape != counts.shape:
        raise InvalidInput(
            f"give one weight per arm: {counts.size} arms, {shares.size} weights",
            hint="pass the configured traffic weights, e.g. [0.5, 0.5]",
            problems=[Problem("weights", "one weight per arm")],
        )
    if not np.isfinite(shares).all() or (shares < 0).any() or shares.max() <= 0:
        raise InvalidInput(
            "weights must be finite, non-negative numbers with a positive sum",
            hint="pass the configured traffic weights, e.g. [0.5, 0.5]",
            problems=[Problem("weights", "finite, >= 0, not all zero")],
        )
    shares = shares / shares.max()  # no overflow when summing huge weights
    expected = shares / shares.sum() * counts.sum()
    served = expected > 0
    if (counts[~served] > 0).any():  # users in an arm configured to get none
        statistic, p_value = math.inf, 0.0
    elif served.sum() < 2:
        statistic, p_value = 0.0, 1.0
    else:
        statistic, p_value = sps.chisquare(counts[served], expected[served])
    return SrmResult(
        tuple(int(c) for c in counts),
        tuple(float(e) for e in expected),
        float(statistic),
        float(p_value),
        threshold,
    )
