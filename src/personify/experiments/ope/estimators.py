"""Off-policy estimators: what would a new policy have earned on traffic logged by another?

Given logged rounds ``(context x_i, action a_i, reward r_i, propensity p_i)`` collected by a
logging policy and the action distribution ``pi(a | x_i)`` of the policy to evaluate, with
importance weights ``w_i = pi(a_i | x_i) / p_i``:

* **IPW** (inverse propensity weighting): ``mean(w_i r_i)``. Unbiased when every action the
  new policy takes had a non-zero logging propensity; high variance when weights are large.
* **SNIPW** (self-normalised IPW): ``sum(w_i r_i) / sum(w_i)``. Slightly biased, much more
  stable; invariant to a constant shift of the rewards.
* **DR** (doubly robust): ``mean( sum_a pi(a|x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i)) )`` with
  a reward model ``q``: unbiased if either the propensities or the model are right, and
  lower-variance than IPW when the model is decent.

Each estimate comes with a normal-approximation 95% interval from the per-round terms.
Slates (several positions per impression) are handled by passing, per round, the
probability the new policy puts the logged item at the logged position.

>>> import numpy as np
>>> r = np.array([1.0, 0.0, 1.0, 0.0]); p = np.full(4, 0.5); pi = np.array([1.0, 0.0, 1.0, 1.0])
>>> round(ipw(r, p, pi).value, 3), round(snipw(r, p, pi).value, 3)
(1.0, 0.667)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from personify.errors import InvalidInput, Problem

FloatArray = npt.NDArray[np.float64]
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """An off-policy value estimate with its standard error and 95% interval."""

    estimator: str
    value: float
    se: float
    n: int

    @property
    def ci(self) -> tuple[float, float]:
        return (self.value - Z95 * self.se, self.value + Z95 * self.se)

    def as_dict(self) -> dict[str, object]:
        return {
            "estimator": self.estimator,
            "value": self.value,
            "se": self.se,
            "ci": list(self.ci),
            "n": self.n,
        }


def _arrays(*arrays: npt.ArrayLike) -> list[FloatArray]:
    out = [np.asarray(a, dtype=np.float64) for a in arrays]
    n = out[0].shape[0] if out and out[0].ndim else 0
    problems = []
    if n == 0:
        problems.append(Problem("rewards", "need at least one logged round"))
    if any(a.shape[0] != n for a in out):
        problems.append(
            Problem("rounds", "rewards, propensities and target probabilities differ in length")
        )
    propensity = out[1] if len(out) > 1 else None
    if propensity is not None and n and ((propensity <= 0) | (propensity > 1)).any():
        problems.append(
            Problem(
                "propensity",
                "each logged propensity must be in (0, 1]: zero means it could not be logged",
            )
        )
    if any(not np.isfinite(a).all() for a in out):
        problems.append(Problem("rounds", "values must be finite numbers"))
    if problems:
        raise InvalidInput(
            "cannot evaluate a policy on these logs",
            hint="log the propensity of every decision (personify does this on /v1/decide)",
            problems=problems,
        )
    return out


def _estimate(name: str, terms: FloatArray) -> Estimate:
    n = terms.size
    se = float(terms.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Estimate(name, float(terms.mean()), se, n)


def ipw(rewards: npt.ArrayLike, propensities: npt.ArrayLike, target: npt.ArrayLike) -> Estimate:
    """Inverse propensity weighting; ``target[i]`` is pi(logged action | x_i)."""
    r, p, pi = _arrays(rewards, propensities, target)
    return _estimate("ipw", pi / p * r)


def snipw(rewards: npt.ArrayLike, propensities: npt.ArrayLike, target: npt.ArrayLike) -> Estimate:
    """Self-normalised IPW; its standard error is the delta-method one of a ratio."""
    r, p, pi = _arrays(rewards, propensities, target)
    w = pi / p
    mean_w = float(w.mean())
    if mean_w == 0:
        raise InvalidInput(
            "the new policy never takes a logged action: all importance weights are zero",
            hint="the logs cannot say anything about this policy; log with more exploration",
            problems=[Problem("target", "zero on every logged action")],
        )
    value = float((w * r).sum() / w.sum())
    terms = w * (r - value) / mean_w  # influence function of the ratio estimator
    se = float(terms.std(ddof=1) / math.sqrt(r.size)) if r.size > 1 else math.nan
    return Estimate("snipw", value, se, int(r.size))


def doubly_robust(
    rewards: npt.ArrayLike,
    propensities: npt.ArrayLike,
    target: npt.ArrayLike,
    model_logged: npt.ArrayLike,
    model_value: npt.ArrayLike,
) -> Estimate:
    """Doubly robust: ``model_value[i] = sum_a pi(a|x_i) q(x_i, a)``, ``q(x_i, a_i)`` logged."""
    r, p, pi, q_logged, q_value = _arrays(rewards, propensities, target, model_logged, model_value)
    return _estimate("dr", q_value + pi / p * (r - q_logged))
