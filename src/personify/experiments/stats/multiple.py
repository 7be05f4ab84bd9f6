"""Multiple-comparison corrections for many arms or many metrics.

Testing five metrics at ``alpha = 0.05`` finds a "winner" by chance about a quarter of the
time. Two standard corrections, returning adjusted p-values (compare them with ``alpha``):

* :func:`holm`: controls the family-wise error rate (any false positive), uniformly more
  powerful than Bonferroni. Use it for guardrails and ship decisions.
* :func:`benjamini_hochberg`: controls the false discovery rate (the expected share of false
  positives among the discoveries). Use it when scanning many metrics for leads.

>>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
[0.03, 0.06, 0.06]
>>> [round(p, 3) for p in benjamini_hochberg([0.01, 0.04, 0.03])]
[0.03, 0.04, 0.04]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from personify.errors import InvalidInput, Problem


def _checked(p_values: Sequence[float]) -> np.ndarray:
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or ((p < 0) | (p > 1) | np.isnan(p)).any():
        raise InvalidInput(
            "p-values must be a list of numbers between 0 and 1",
            hint="pass one p-value per comparison",
            problems=[Problem("p_values", "each must be in [0, 1]")],
        )
    return p


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order."""
    p = _checked(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = (m - np.arange(m)) * p[order]
    adjusted = np.minimum(1.0, np.maximum.accumulate(stepped))
    result = np.empty(m)
    result[order] = adjusted
    return [float(x) for x in result]


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg step-up adjusted p-values (q-values), in the input order."""
    p = _checked(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    result = np.empty(m)
    result[order] = adjusted
    return [float(x) for x in result]
