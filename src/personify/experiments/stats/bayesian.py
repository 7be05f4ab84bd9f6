"""Bayesian read-out: chance to beat control and expected loss.

The effect (relative lift by default) gets a normal posterior: its likelihood is the
delta-method normal approximation used by the frequentist test, and the prior is either flat
(improper) or normal with a given mean and variance on the same scale. The posterior answers
the questions a marketer actually asks:

* **chance to win**: ``P(effect > 0)``;
* **risk** (expected loss): what we lose on average if we pick an arm and it is the wrong
  one: ``E[max(effect, 0)]`` for keeping control, ``E[max(-effect, 0)]`` for shipping the
  treatment. Ship when the treatment's risk is below a tolerance (say 0.5% relative).

>>> from personify.experiments.stats.moments import Proportion
>>> r = bayesian_test(Proportion(49, 100), Proportion(51, 100))
>>> round(r.chance_to_win, 5), [round(x, 4) for x in r.risk]
(0.60918, [0.0814, 0.0406])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from personify.errors import InvalidInput, Problem
from personify.experiments.stats.frequentist import (
    Difference,
    check_alpha,
    difference,
    difference_variance,
)
from personify.experiments.stats.moments import Statistic


@dataclass(frozen=True)
class NormalPrior:
    """A normal prior on the effect (same scale as the effect: relative or absolute)."""

    mean: float = 0.0
    variance: float = 1.0

    def __post_init__(self) -> None:
        if not self.variance > 0:
            raise InvalidInput(
                "the prior variance must be positive",
                hint="use a large variance (e.g. 1.0 on relative lift) for a weak prior",
                problems=[Problem("prior.variance", "must be > 0")],
            )


@dataclass(frozen=True)
class BayesianResult:
    """The effect's posterior mean and sd, credible interval, chance to win and risks."""

    expected: float
    uplift_sd: float
    ci: tuple[float, float]
    chance_to_win: float
    risk: tuple[float, float]
    difference: Difference

    def as_dict(self) -> dict[str, object]:
        return {
            "expected": self.expected,
            "uplift_sd": self.uplift_sd,
            "ci": list(self.ci),
            "chance_to_win": self.chance_to_win,
            "risk_control": self.risk[0],
            "risk_treatment": self.risk[1],
            "difference": self.difference,
        }


def expected_losses(mu: float, sigma: float) -> tuple[float, float]:
    """``E[max(X, 0)]`` and ``E[max(-X, 0)]`` for ``X ~ N(mu, sigma^2)``.

    Each is computed from its own closed form, not one from the other (``a - mu``), so the
    small one keeps its precision when the other is large.
    """
    if sigma <= 0:
        return max(mu, 0.0), max(-mu, 0.0)
    z = mu / sigma
    density = float(sps.norm.pdf(z))
    keep_control = mu * float(sps.norm.cdf(z)) + sigma * density
    ship_treatment = sigma * density - mu * float(sps.norm.sf(z))
    return keep_control, ship_treatment


def bayesian_test(
    a: Statistic,
    b: Statistic,
    *,
    kind: Difference = "relative",
    prior: NormalPrior | None = None,
    alpha: float = 0.05,
) -> BayesianResult:
    """The normal posterior of b's effect over a (see the module docstring)."""
    check_alpha(alpha)
    estimate = difference(a, b, kind)
    variance = difference_variance(a, b, kind)
    if variance <= 0:
        raise InvalidInput(
            "both arms have no variation yet, so the effect has no posterior spread",
            hint="wait until the metric varies (some units convert and some do not)",
            problems=[Problem("variance", "zero")],
        )
    if prior is not None:
        precision = 1 / variance + 1 / prior.variance
        mean = (estimate / variance + prior.mean / prior.variance) / precision
        variance = 1 / precision
    else:
        mean = estimate
    sd = math.sqrt(variance)
    z = float(sps.norm.ppf(1 - alpha / 2))
    chance = float(sps.norm.sf(0, loc=mean, scale=sd)) if sd > 0 else float(mean > 0)
    return BayesianResult(
        mean, sd, (mean - z * sd, mean + z * sd), chance, expected_losses(mean, sd), kind
    )
