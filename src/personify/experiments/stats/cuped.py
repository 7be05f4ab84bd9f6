"""CUPED: variance reduction with each user's pre-exposure behaviour.

Users differ a lot before any experiment: heavy buyers stay heavy buyers. Regressing the
metric ``y`` on a pre-exposure covariate ``x`` (the same metric in the weeks before the
exposure) and analysing ``y - theta (x - mean_x)`` removes that predictable part. With
``theta = cov(x, y) / var(x)`` pooled over all arms (so it does not depend on the treatment),
the adjusted mean stays unbiased (randomisation makes ``x`` balanced) and the variance shrinks
by ``1 - corr(x, y)^2`` (Deng, Xu, Kohavi & Walker, 2013).

Returns :class:`~.moments.Moments` per arm, which every test in this package accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from personify.errors import InvalidInput, Problem
from personify.experiments.stats.moments import Moments


@dataclass(frozen=True)
class CupedArms:
    """Adjusted arms, the pooled ``theta`` and the share of variance removed."""

    arms: tuple[Moments, ...]
    theta: float
    variance_reduction: float


def cuped(metrics: Sequence[npt.ArrayLike], covariates: Sequence[npt.ArrayLike]) -> CupedArms:
    """Adjust each arm's per-user ``metrics`` with its pre-exposure ``covariates``."""
    ys = [np.asarray(m, dtype=float) for m in metrics]
    xs = [np.asarray(c, dtype=float) for c in covariates]
    if len(ys) != len(xs) or any(
        y.shape != x.shape or y.size < 2 for y, x in zip(ys, xs, strict=False)
    ):
        raise InvalidInput(
            "each arm needs one pre-exposure value per user, and at least 2 users",
            hint="pass metrics and covariates arm by arm, aligned user by user",
            problems=[Problem("covariates", "must match metrics in shape")],
        )
    all_x, all_y = np.concatenate(xs), np.concatenate(ys)
    var_x = float(np.var(all_x, ddof=1))
    theta = float(np.cov(all_x, all_y, ddof=1)[0, 1] / var_x) if var_x > 0 else 0.0
    mean_x = float(all_x.mean())
    arms = []
    raw_var, adjusted_var = 0.0, 0.0
    for y, x in zip(ys, xs, strict=True):
        adjusted = y - theta * (x - mean_x)
        arms.append(Moments(float(adjusted.mean()), float(np.var(adjusted, ddof=1)), int(y.size)))
        raw_var += float(np.var(y, ddof=1))
        adjusted_var += float(np.var(adjusted, ddof=1))
    reduction = 1 - adjusted_var / raw_var if raw_var > 0 else 0.0
    return CupedArms(tuple(arms), theta, reduction)
