"""Frequentist comparisons of a treatment arm (b) with a control arm (a).

* :func:`welch_ttest`: Welch's t-test with Welch-Satterthwaite degrees of freedom, on the
  absolute difference ``mean_b - mean_a`` or the relative lift ``(mean_b - mean_a) / |mean_a|``.
  The relative lift's variance comes from the delta method,
  ``var_b / (mean_a^2 n_b) + var_a mean_b^2 / (mean_a^4 n_a)``: the ratio of two means is not
  normal, but its linearisation is, and that is what the interval is built on.
* :func:`two_proportion_ztest`: the classic pooled z-test for conversion rates, for readers
  who expect it; the analysis uses the t-test on proportions, as gbstats does.

Both answer a :class:`TestResult`. With ``alternative="greater"`` the hypothesis is that b
beats a (the interval is ``[low, inf)``); ``"less"`` the reverse.

>>> from personify.experiments.stats.moments import SampleMean
>>> a = SampleMean(1396.87, 52377.9767, 3407); b = SampleMean(2422.7, 134698.29, 3461)
>>> r = welch_ttest(a, b)
>>> round(r.estimate, 5), [round(x, 5) for x in r.ci], round(r.p_value, 5)
(0.70732, [-0.03526, 1.44989], 0.06191)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats as sps

from personify.errors import InvalidInput, Problem
from personify.experiments.stats.moments import Statistic

Alternative = Literal["two-sided", "greater", "less"]
Difference = Literal["relative", "absolute"]


@dataclass(frozen=True)
class TestResult:
    """An estimate of b versus a with its standard error, interval and p-value."""

    estimate: float
    se: float
    ci: tuple[float, float]
    p_value: float
    difference: Difference
    alternative: Alternative = "two-sided"
    dof: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "estimate": self.estimate,
            "se": self.se,
            "ci": list(self.ci),
            "p_value": self.p_value,
            "difference": self.difference,
            "alternative": self.alternative,
        }


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise InvalidInput(
            f"alpha must be between 0 and 1, got {alpha}",
            hint="use 0.05 for 95% intervals",
            problems=[Problem("alpha", "must be in (0, 1)")],
        )


def difference(a: Statistic, b: Statistic, kind: Difference) -> float:
    """``mean_b - mean_a``, relative to ``|mean_a|`` when ``kind`` is relative."""
    if kind == "absolute":
        return b.mean - a.mean
    if a.mean == 0:
        raise InvalidInput(
            "relative lift is undefined: the control mean is zero",
            hint="use the absolute difference, or wait until the control has conversions",
            problems=[Problem("control", "mean is zero")],
        )
    return (b.mean - a.mean) / abs(a.mean)


def difference_variance(a: Statistic, b: Statistic, kind: Difference) -> float:
    """The variance of :func:`difference` (delta method for the relative lift)."""
    if kind == "absolute":
        return b.variance / b.n + a.variance / a.n
    return b.variance / (a.mean**2 * b.n) + a.variance * b.mean**2 / (a.mean**4 * a.n)


def welch_dof(a: Statistic, b: Statistic) -> float:
    """Welch-Satterthwaite degrees of freedom from the unit variances and counts."""
    va, vb = a.variance / a.n, b.variance / b.n
    denominator = va**2 / (a.n - 1) + vb**2 / (b.n - 1)
    if denominator == 0:
        return float(a.n + b.n - 2)
    return float((va + vb) ** 2 / denominator)


def welch_ttest(
    a: Statistic,
    b: Statistic,
    *,
    kind: Difference = "relative",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """Welch's t-test of b against a (see the module docstring)."""
    check_alpha(alpha)
    estimate = difference(a, b, kind)
    se = math.sqrt(difference_variance(a, b, kind))
    dof = welch_dof(a, b)
    t = estimate / se if se > 0 else math.copysign(math.inf, estimate) if estimate else 0.0
    if alternative == "two-sided":
        width = float(sps.t.ppf(1 - alpha / 2, dof)) * se
        ci = (estimate - width, estimate + width)
        p = float(2 * sps.t.sf(abs(t), dof))
    elif alternative == "greater":
        ci = (estimate - float(sps.t.ppf(1 - alpha, dof)) * se, math.inf)
        p = float(sps.t.sf(t, dof))
    else:
        ci = (-math.inf, estimate + float(sps.t.ppf(1 - alpha, dof)) * se)
        p = float(sps.t.cdf(t, dof))
    return TestResult(estimate, se, ci, p, kind, alternative, dof)


def two_proportion_ztest(
    conversions_a: int,
    n_a: int,
    conversions_b: int,
    n_b: int,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> TestResult:
    """Pooled two-proportion z-test on ``p_b - p_a``; the interval uses unpooled variances."""
    check_alpha(alpha)
    if min(n_a, n_b) <= 0 or not (0 <= conversions_a <= n_a and 0 <= conversions_b <= n_b):
        raise InvalidInput(
            "conversions must be between 0 and the number of users in each arm",
            hint="pass conversions and users per arm, with users > 0",
            problems=[Problem("conversions", "out of range")],
        )
    pa, pb = conversions_a / n_a, conversions_b / n_b
    pooled = (conversions_a + conversions_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    estimate = pb - pa
    z = estimate / se_pooled if se_pooled > 0 else 0.0
    if alternative == "two-sided":
        width = float(sps.norm.ppf(1 - alpha / 2)) * se
        return TestResult(
            estimate,
            se,
            (estimate - width, estimate + width),
            float(2 * sps.norm.sf(abs(z))),
            "absolute",
        )
    q = float(sps.norm.ppf(1 - alpha)) * se
    if alternative == "greater":
        return TestResult(
            estimate, se, (estimate - q, math.inf), float(sps.norm.sf(z)), "absolute", alternative
        )
    return TestResult(
        estimate, se, (-math.inf, estimate + q), float(sps.norm.cdf(z)), "absolute", alternative
    )
