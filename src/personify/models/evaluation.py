"""How good a probability is: ROC-AUC, PR-AUC, log-loss, Brier, lift and gain by decile,
and repeated stratified cross-validation that reports them fold by fold.

>>> import numpy as np
>>> m = classification_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
>>> m["roc_auc"]
0.75
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import RepeatedStratifiedKFold

from personify.errors import InvalidInput, Problem

Progress = Callable[[int, int], None]


def check_binary(y: Any) -> np.ndarray[Any, Any]:
    """Labels as a 0/1 integer array; refuses anything else with a hint."""
    arr = np.asarray(y)
    values = set(np.unique(arr[~pd.isna(arr)]).tolist()) if len(arr) else set()
    if pd.isna(arr).any() or not values <= {0, 1} or len(values) < 2:
        raise InvalidInput(
            "labels must be 0/1 and contain both classes",
            hint="map the label column to 0 and 1 (e.g. Yes -> 1, No -> 0) with no blanks",
            problems=[Problem("label", f"found values {sorted(map(str, values))[:5]}")],
        )
    return arr.astype(int)


def classification_metrics(y: Any, p: Any) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), log-loss, Brier score and the base rate."""
    yy = check_binary(y)
    pp = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    return {
        "roc_auc": float(roc_auc_score(yy, pp)),
        "pr_auc": float(average_precision_score(yy, pp)),
        "log_loss": float(log_loss(yy, pp, labels=[0, 1])),
        "brier": float(brier_score_loss(yy, pp)),
        "base_rate": float(yy.mean()),
    }


def lift_table(y: Any, p: Any, bins: int = 10) -> list[dict[str, float]]:
    """Customers sorted by score into ``bins`` groups (1 = highest scores).

    Each row: size, positives, rate, lift (rate over the base rate) and cumulative gain
    (share of all positives captured down to this group).
    """
    yy = check_binary(y)
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
    groups = np.array_split(yy[order], bins)
    total, base = yy.sum(), yy.mean()
    rows, captured = [], 0
    for i, g in enumerate(groups, start=1):
        captured += int(g.sum())
        rate = float(g.mean()) if len(g) else 0.0
        rows.append(
            {
                "decile": i,
                "size": len(g),
                "positives": int(g.sum()),
                "rate": rate,
                "lift": rate / base if base else 0.0,
                "cumulative_gain": captured / total if total else 0.0,
            }
        )
    return rows


def cross_validate(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    *,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Repeated stratified k-fold: metrics per fold, their means and standard deviations.

    ``model`` is cloned for every fold (scikit-learn conventions), so nothing learned in one
    fold reaches another.
    """
    yy = check_binary(y)
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    per_fold: list[dict[str, float]] = []
    total = folds * repeats
    for i, (train, test) in enumerate(splitter.split(X, yy)):
        fitted = clone(model).fit(X.iloc[train], yy[train])
        per_fold.append(classification_metrics(yy[test], fitted.predict_proba(X.iloc[test])[:, 1]))
        if progress is not None:
            progress(i + 1, total)
    return summarize(per_fold)


def summarize(per_fold: Sequence[dict[str, float]]) -> dict[str, Any]:
    names = per_fold[0].keys()
    return {
        "folds": list(per_fold),
        "mean": {n: float(np.mean([f[n] for f in per_fold])) for n in names},
        "std": {n: float(np.std([f[n] for f in per_fold])) for n in names},
    }
