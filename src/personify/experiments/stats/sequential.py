"""Always-valid inference: confidence sequences that stay correct however often you peek.

A fixed-horizon t-test is only valid if it is read once, at the planned sample size; a
marketer who checks the dashboard every morning and stops at the first "significant" day
inflates the false-positive rate several times over. An asymptotic confidence sequence
(Waudby-Smith et al., "Time-uniform central limit theory and asymptotic confidence
sequences", 2023) is wider than a fixed interval but holds *simultaneously* at every sample
size, so stopping whenever it excludes zero keeps the error rate at ``alpha``.

With ``n`` total units, ``s^2 = se^2 n`` and the tuning parameter ``N`` (the sample size
at which the sequence is tightest; defaults to 5,000 like gbstats), the normal-mixture
boundary uses ``rho^2 = (-2 ln(alpha) + ln(1 - 2 ln(alpha))) / N`` and has half-width

    sqrt(s^2) * sqrt( 2 (n rho^2 + 1) / (n^2 rho^2) * ln( sqrt(n rho^2 + 1) / alpha ) )

(two-sided). The one-sided sequence uses ``2 alpha`` in ``rho`` and
``ln(1 + sqrt(n rho^2 + 1) / (2 alpha))``. The always-valid p-value is the ``alpha`` at which
the boundary (with ``rho`` held at the design value) just touches zero, capped at 1.
"""

from __future__ import annotations

import math

from personify.experiments.stats.frequentist import (
    Alternative,
    Difference,
    TestResult,
    check_alpha,
    difference,
    difference_variance,
)
from personify.experiments.stats.moments import Statistic

DEFAULT_TUNING = 5000


def rho(alpha: float, tuning: float) -> float:
    """The mixture's spread, tuned so the sequence is tightest near ``tuning`` units."""
    log_term = -2 * math.log(alpha)
    return math.sqrt((log_term + math.log(log_term + 1)) / tuning)


def _shape(n: int, r: float) -> tuple[float, float]:
    """``n rho^2 + 1`` and the factor ``2 (n rho^2 + 1) / (n^2 rho^2)`` of the boundary."""
    grown = n * r * r + 1
    return grown, 2 * grown / (n * n * r * r)


def sequential_test(
    a: Statistic,
    b: Statistic,
    *,
    kind: Difference = "relative",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    tuning: float = DEFAULT_TUNING,
) -> TestResult:
    """b versus a with an always-valid interval and p-value (see the module docstring)."""
    check_alpha(alpha)
    estimate = difference(a, b, kind)
    se = math.sqrt(difference_variance(a, b, kind))
    n = a.n + b.n
    s = se * math.sqrt(n)
    one_sided = alternative != "two-sided"
    r = rho(2 * alpha if one_sided else alpha, tuning)
    grown, factor = _shape(n, r)
    # exponent where the boundary meets the estimate: ln(...) = estimate^2 / (s^2 factor)
    reach = estimate**2 / (s * s * factor) if s > 0 else math.inf
    if not one_sided:
        half = s * math.sqrt(factor * math.log(math.sqrt(grown) / alpha))
        p = min(1.0, math.sqrt(grown) * math.exp(-reach)) if math.isfinite(reach) else 0.0
        return TestResult(estimate, se, (estimate - half, estimate + half), p, kind, alternative)
    half = s * math.sqrt(factor * math.log(1 + math.sqrt(grown) / (2 * alpha)))
    favourable = estimate > 0 if alternative == "greater" else estimate < 0
    if not favourable:
        p = 1.0
    elif not math.isfinite(reach):
        p = 0.0
    else:
        p = min(1.0, math.sqrt(grown) / (2 * math.expm1(reach))) if reach > 0 else 1.0
    ci = (estimate - half, math.inf) if alternative == "greater" else (-math.inf, estimate + half)
    return TestResult(estimate, se, ci, p, kind, alternative)
