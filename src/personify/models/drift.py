"""Drift between the training data and the latest scoring: PSI and a two-sample KS test.

The population stability index compares the share of customers in each training decile of a
feature (or of the score) now and at training; the usual reading is < 0.1 stable, 0.1-0.2
moderate, > 0.2 a shift worth retraining for. The Kolmogorov-Smirnov test (scipy) adds a
p-value. A feature is flagged when its PSI is above the threshold.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=5000), rng.normal(size=5000)
>>> psi(a, b) < 0.02 and psi(a, b + 1) > 0.2
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

DEFAULT_PSI_THRESHOLD = 0.2


def psi(expected: Any, actual: Any, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` (missing values binned)."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    finite_e = e[np.isfinite(e)]
    inner = np.zeros(0)
    if len(finite_e):
        inner = np.unique(np.quantile(finite_e, np.linspace(0, 1, bins + 1)))[1:-1]

    def shares(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        finite = np.isfinite(values)
        counts = np.bincount(
            np.searchsorted(inner, values[finite], side="right"), minlength=len(inner) + 1
        ).astype(float)
        counts = np.append(counts, float((~finite).sum()))  # a bin for missing values
        return np.clip(counts / max(len(values), 1), 1e-4, None)

    pe, pa = shares(e), shares(a)
    return float(np.sum((pa - pe) * np.log(pa / pe)))


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    threshold: float = DEFAULT_PSI_THRESHOLD,
) -> dict[str, Any]:
    """Per shared column: PSI, KS statistic and p-value, and whether it drifted.

    ``retrain`` is true when any column (the score included, if both frames carry it) is over
    the threshold.
    """
    rows: list[dict[str, Any]] = []
    for column in [c for c in reference.columns if c in current.columns]:
        ref = pd.to_numeric(reference[column], errors="coerce").to_numpy(float)
        cur = pd.to_numeric(current[column], errors="coerce").to_numpy(float)
        value = psi(ref, cur)
        fr, fc = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        ks = ks_2samp(fr, fc) if len(fr) and len(fc) else None
        rows.append(
            {
                "feature": column,
                "psi": value,
                "ks_statistic": float(ks.statistic) if ks is not None else None,
                "ks_pvalue": float(ks.pvalue) if ks is not None else None,
                "drifted": value > threshold,
            }
        )
    rows.sort(key=lambda r: -float(r["psi"]))
    return {
        "threshold": threshold,
        "features": rows,
        "drifted": [r["feature"] for r in rows if r["drifted"]],
        "retrain": any(r["drifted"] for r in rows),
    }
