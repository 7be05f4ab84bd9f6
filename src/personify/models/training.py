"""Training jobs: from a customer table or from the event history to a registered model.

Two entry points share one estimator (:class:`CustomerClassifier`):

* :func:`train_table` - a table with a label column (any customer CSV). Repeated stratified
  k-fold cross-validation of the chosen learner and of the logistic baseline, a lift table
  from out-of-fold scores, then a fit on every row.
* :func:`train_events` - labels from the event history with a horizon ("churn": no order in
  the ``horizon`` days after the cutoff). A time split: the model learns from features as
  of ``cutoff - horizon`` with labels in the following ``horizon`` days, and is evaluated on
  features as of ``cutoff`` against what happened in the ``horizon`` days after it, beside
  the logistic baseline and a recency-only baseline from the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import ParameterSampler, StratifiedKFold, cross_val_predict

from personify.errors import InvalidInput, Problem
from personify.models.evaluation import (
    check_binary,
    classification_metrics,
    cross_validate,
    lift_table,
)
from personify.models.features import build_features, cutoff_text, purchase_labels
from personify.models.serving import ServedModel, model_inputs, reference_sample
from personify.models.supervised import Calibration, CustomerClassifier, Learner

Progress = Callable[[str, int, int], None]
TARGETS = ("churn", "purchase")

# The bounded search explores around the defaults: shallow trees, slow learning.
SEARCH_SPACE: dict[str, list[Any]] = {
    "n_estimators": [200, 300, 400, 600],
    "learning_rate": [0.01, 0.02, 0.03, 0.05],
    "num_leaves": [3, 4, 6, 8],
    "min_child_samples": [20, 40, 80],
    "colsample_bytree": [0.5, 0.6, 0.8],
    "reg_lambda": [1.0, 5.0, 10.0],
}


@dataclass
class TrainingResult:
    """A fitted model ready for the registry, with how it was evaluated."""

    model: ServedModel
    kind: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    data_window: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def _quiet(_: str, __: int, ___: int) -> None:
    pass


def train_table(
    X: pd.DataFrame,
    y: Any,
    *,
    target: str = "label",
    learner: Learner = "lightgbm",
    params: Mapping[str, Any] | None = None,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    calibration: Calibration = "none",
    progress: Progress = _quiet,
) -> TrainingResult:
    """Cross-validate ``learner`` and the logistic baseline, then fit on every row."""
    yy = check_binary(y)
    _check_folds(folds, repeats, yy)
    model = CustomerClassifier(
        learner=learner, params=dict(params or {}), calibration=calibration, random_state=seed
    )
    baseline = CustomerClassifier(learner="logistic", random_state=seed)
    total = folds * repeats
    cv = cross_validate(
        model,
        X,
        yy,
        folds=folds,
        repeats=repeats,
        seed=seed,
        progress=lambda i, n: progress(f"cross-validating {learner}", i, n),
    )
    cv_base = cv
    if learner != "logistic":
        cv_base = cross_validate(
            baseline,
            X,
            yy,
            folds=folds,
            repeats=repeats,
            seed=seed,
            progress=lambda i, n: progress("cross-validating logistic", i, n),
        )
    oof = cross_val_predict(
        clone(model),
        X,
        yy,
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        method="predict_proba",
    )[:, 1]
    progress("fitting on all rows", 0, 1)
    fitted = clone(model).fit(X, yy)
    progress("fitting on all rows", 1, 1)
    served = ServedModel(
        estimator=fitted,
        features=list(X.columns),
        target=target,
        reference=reference_sample(X, fitted.predict_proba(X)[:, 1], seed),
    )
    metrics = {
        "protocol": f"{folds}-fold stratified CV repeated {repeats} times (seed {seed})",
        "folds": total,
        learner: {"mean": cv["mean"], "std": cv["std"]},
        "logistic": {"mean": cv_base["mean"], "std": cv_base["std"]},
        "roc_auc": cv["mean"]["roc_auc"],
        "lift": lift_table(yy, oof),
    }
    return TrainingResult(
        model=served,
        kind=target,
        params={"learner": learner, **fitted.estimator_.get_params()},
        metrics=metrics,
        data_window={"rows": len(X), "positives": int(yy.sum())},
    )


def event_dataset(
    con: Any,
    source: str,
    *,
    cutoff: str,
    horizon_days: int,
    target: str,
    consent: Callable[[Iterable[str]], set[str]] | None = None,
) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """Features as of ``cutoff`` and the label over the following ``horizon_days``.

    ``consent`` (``ids -> allowed ids``, the profiling consent of issue 6) leaves out the
    profiles it does not return.
    """
    if target not in TARGETS:
        raise InvalidInput(
            f"unknown target {target!r}",
            hint="train churn (no order in the horizon) or purchase (any order in it)",
            problems=[Problem("target", "must be churn or purchase")],
        )
    frame = build_features(con, source, as_of=cutoff)
    bought = purchase_labels(con, source, frame.index, cutoff=cutoff, horizon_days=horizon_days)
    labels = bought.to_numpy() if target == "purchase" else 1 - bought.to_numpy()
    if consent is not None:
        keep = frame.index.isin(list(consent([str(i) for i in frame.index])))
        frame, labels = frame[keep], labels[keep]
    return frame, labels.astype(int)


def train_events(
    con: Any,
    source: str,
    *,
    cutoff: str,
    horizon_days: int = 90,
    target: str = "churn",
    learner: Learner = "lightgbm",
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    calibration: Calibration = "none",
    progress: Progress = _quiet,
    consent: Callable[[Iterable[str]], set[str]] | None = None,
) -> TrainingResult:
    """Time-split training from events; see the module docstring for the protocol.

    ``consent`` filters both windows' profiles (see :func:`event_dataset`).
    """
    test_at = pd.Timestamp(cutoff_text(cutoff))
    train_at = test_at - pd.Timedelta(days=horizon_days)
    progress("building features", 0, 2)
    X_train, y_train = event_dataset(
        con,
        source,
        cutoff=train_at.isoformat(),
        horizon_days=horizon_days,
        target=target,
        consent=consent,
    )
    progress("building features", 1, 2)
    X_test, y_test = event_dataset(
        con,
        source,
        cutoff=test_at.isoformat(),
        horizon_days=horizon_days,
        target=target,
        consent=consent,
    )
    progress("building features", 2, 2)
    for name, labels in (("training", y_train), ("evaluation", y_test)):
        if len(set(labels.tolist())) < 2:
            raise InvalidInput(
                f"the {name} window has only one class of label",
                hint="choose a cutoff with history before it and at least one horizon after it",
                problems=[Problem("cutoff", f"{name} labels are all {labels[:1].tolist()}")],
            )
    columns = model_inputs(X_train)
    model = CustomerClassifier(
        learner=learner, params=dict(params or {}), calibration=calibration, random_state=seed
    )
    progress(f"fitting {learner}", 0, 2)
    fitted = clone(model).fit(X_train[columns], y_train)
    progress(f"fitting {learner}", 1, 2)
    baseline = CustomerClassifier(learner="logistic", random_state=seed).fit(
        X_train[columns], y_train
    )
    progress(f"fitting {learner}", 2, 2)
    served = ServedModel(
        estimator=fitted,
        features=columns,
        target=target,
        horizon_days=horizon_days,
        reference=reference_sample(X_train[columns], fitted.predict_proba(X_train[columns])[:, 1]),
    )
    p_test = served.predict(X_test)
    recency = X_test["recency_days"].fillna(X_test["tenure_days"]).to_numpy(float)
    recency_auc = float(roc_auc_score(y_test, recency if target == "churn" else -recency))
    metrics = {
        "protocol": (
            f"time split: trained on features as of {train_at.date()} with {target} labels "
            f"over the next {horizon_days} days; evaluated as of {test_at.date()}"
        ),
        "holdout": classification_metrics(y_test, p_test),
        "roc_auc": classification_metrics(y_test, p_test)["roc_auc"],
        "logistic_roc_auc": float(
            roc_auc_score(y_test, baseline.predict_proba(X_test.reindex(columns=columns))[:, 1])
        ),
        "recency_roc_auc": recency_auc,
        "lift": lift_table(y_test, p_test),
        "train_rows": len(X_train),
        "test_rows": len(X_test),
    }
    return TrainingResult(
        model=served,
        kind=target,
        params={"learner": learner, **fitted.estimator_.get_params()},
        metrics=metrics,
        data_window={
            "features_as_of": train_at.isoformat(),
            "labels_until": test_at.isoformat(),
            "evaluated_as_of": test_at.isoformat(),
            "horizon_days": horizon_days,
        },
    )


def search_lightgbm(
    X: pd.DataFrame,
    y: Any,
    *,
    budget_s: float = 60.0,
    max_trials: int = 20,
    folds: int = 3,
    seed: int = 0,
    progress: Progress = _quiet,
) -> dict[str, Any]:
    """Random search over :data:`SEARCH_SPACE`, scored by CV ROC-AUC, stopped by the budget.

    The first trial is always the defaults, so the search can only keep or improve on them.
    Uses its own folds (``seed + 1``) so the choice is not tuned to the evaluation folds.
    """
    yy = check_binary(y)
    candidates: list[dict[str, Any]] = [
        {},
        *ParameterSampler(SEARCH_SPACE, max_trials - 1, random_state=seed),
    ]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + 1)
    trials: list[dict[str, Any]] = []
    started = time.monotonic()
    for i, params in enumerate(candidates):
        if i and time.monotonic() - started > budget_s:
            break
        scores = []
        for train, test in splitter.split(X, yy):
            m = CustomerClassifier(params=params, random_state=seed).fit(X.iloc[train], yy[train])
            scores.append(m.score(X.iloc[test], yy[test]))
        trials.append({"params": params, "roc_auc": float(np.mean(scores))})
        progress("searching", i + 1, len(candidates))
    progress("searching", len(trials), len(trials))  # the budget may end the search early
    best = max(trials, key=lambda t: float(t["roc_auc"]))
    return {"best_params": best["params"], "best_roc_auc": best["roc_auc"], "trials": trials}


def _check_folds(folds: int, repeats: int, y: np.ndarray[Any, Any]) -> None:
    problems = []
    if folds < 2:
        problems.append(Problem("folds", "must be at least 2"))
    if repeats < 1:
        problems.append(Problem("repeats", "must be at least 1"))
    if folds > min(np.bincount(y)):
        problems.append(Problem("folds", "more folds than examples of the rarer class"))
    if problems:
        raise InvalidInput(
            "invalid cross-validation settings",
            hint="e.g. --folds 5 --repeats 3",
            problems=problems,
        )
