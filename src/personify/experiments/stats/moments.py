"""Sufficient statistics per arm: everything the tests need, nothing per user.

An arm is summarised by a few sums, so results can be computed from a SQL ``GROUP BY`` as
well as from a data frame, and combined across days. Each statistic exposes ``mean``,
``variance`` (of one unit) and ``n``; the tests in this package only ever use those three.

* :class:`SampleMean`: a numeric metric per user (revenue, orders). Variance with Bessel's
  correction, ``(ss - s^2/n) / (n - 1)``.
* :class:`Proportion`: a 0/1 metric per user (converted). Variance ``p(1 - p)``, as in
  gbstats.
* :class:`RatioStatistic`: a ratio of sums (clicks / impressions, revenue / orders); the
  variance of the ratio comes from the delta method, because users, not impressions, are the
  independent units.
* :class:`RegressionAdjusted`: a metric with CUPED adjustment (see :mod:`.cuped`).

>>> arm = SampleMean(sum=30.0, sum_squares=110.0, n=10)
>>> arm.mean, round(arm.variance, 4)
(3.0, 2.2222)
>>> Proportion(sum=49, n=100).variance
0.2499
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from personify.errors import InvalidInput, Problem


class Statistic(Protocol):
    """What a test needs from an arm: the mean, the variance of one unit and the unit count."""

    @property
    def mean(self) -> float: ...

    @property
    def variance(self) -> float: ...

    @property
    def n(self) -> int: ...


def _check_n(n: int, field: str = "n") -> None:
    if n < 2:
        raise InvalidInput(
            f"an arm needs at least 2 units to estimate a variance, got {n}",
            hint="wait for more traffic before analysing",
            problems=[Problem(field, "must be at least 2")],
        )


@dataclass(frozen=True)
class SampleMean:
    """A numeric per-unit metric from its sum, sum of squares and unit count."""

    sum: float
    sum_squares: float
    n: int

    def __post_init__(self) -> None:
        _check_n(self.n)

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        return max(0.0, (self.sum_squares - self.sum**2 / self.n) / (self.n - 1))

    @classmethod
    def of(cls, values: npt.ArrayLike) -> SampleMean:
        data = np.asarray(values, dtype=float)
        return cls(float(data.sum()), float((data**2).sum()), int(data.size))


@dataclass(frozen=True)
class Proportion:
    """A 0/1 per-unit metric from its count of successes and units."""

    sum: float
    n: int

    def __post_init__(self) -> None:
        _check_n(self.n)
        if not 0 <= self.sum <= self.n:
            raise InvalidInput(
                f"successes ({self.sum}) must be between 0 and the unit count ({self.n})",
                hint="count each unit at most once for a conversion metric",
                problems=[Problem("sum", "must be between 0 and n")],
            )

    @property
    def mean(self) -> float:
        return self.sum / self.n

    @property
    def variance(self) -> float:
        p = self.mean
        return p * (1 - p)


@dataclass(frozen=True)
class RatioStatistic:
    """A ratio of two per-unit sums (numerator m, denominator d) with the delta method.

    ``mean`` is ``sum(m) / sum(d)``; ``variance`` is the per-unit variance of that ratio's
    linearisation, ``(var_m - 2 r cov_md + r^2 var_d) / mean_d^2`` with ``r`` the ratio, so
    ``variance / n`` is the squared standard error, as for the other statistics.
    """

    m_sum: float
    m_sum_squares: float
    d_sum: float
    d_sum_squares: float
    m_d_sum_product: float
    n: int

    def __post_init__(self) -> None:
        _check_n(self.n)
        if self.d_sum == 0:
            raise InvalidInput(
                "the denominator of a ratio metric sums to zero",
                hint="a ratio metric needs at least one unit with a non-zero denominator",
                problems=[Problem("denominator", "sums to zero")],
            )

    @property
    def mean(self) -> float:
        return self.m_sum / self.d_sum

    @property
    def variance(self) -> float:
        n = self.n
        mean_m, mean_d = self.m_sum / n, self.d_sum / n
        var_m = (self.m_sum_squares - self.m_sum**2 / n) / (n - 1)
        var_d = (self.d_sum_squares - self.d_sum**2 / n) / (n - 1)
        cov = (self.m_d_sum_product - self.m_sum * self.d_sum / n) / (n - 1)
        ratio = mean_m / mean_d
        return max(0.0, (var_m - 2 * ratio * cov + ratio**2 * var_d) / mean_d**2)

    @classmethod
    def of(cls, numerators: npt.ArrayLike, denominators: npt.ArrayLike) -> RatioStatistic:
        m = np.asarray(numerators, dtype=float)
        d = np.asarray(denominators, dtype=float)
        return cls(
            float(m.sum()),
            float((m**2).sum()),
            float(d.sum()),
            float((d**2).sum()),
            float((m * d).sum()),
            int(m.size),
        )


@dataclass(frozen=True)
class Moments:
    """Any statistic given directly by mean, unit variance and count (e.g. after CUPED)."""

    mean: float
    variance: float
    n: int
