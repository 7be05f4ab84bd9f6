"""Binary classifiers (churn, purchase propensity) behind one scikit-learn estimator.

:class:`CustomerClassifier` follows the estimator contract: ``__init__`` only stores
parameters, ``fit`` returns ``self``, learned state ends in ``_``; ``predict_proba``,
``predict`` and ``score`` (ROC-AUC, the figure churn models are compared by) work as
everywhere in scikit-learn, so ``clone``, cross-validation and search work unchanged.

LightGBM is the default learner; logistic regression (median imputation, z-scores, one-hot)
is the baseline reported beside it. Calibration maps scores to probabilities with isotonic or
sigmoid regression fitted on out-of-fold predictions, so the served model stays a single
booster whose per-customer contributions can be explained.

>>> import pandas as pd
>>> X = pd.DataFrame({"recency": [1, 50, 3, 80, 2, 90] * 5, "plan": ["a", "b"] * 15})
>>> y = [0, 1, 0, 1, 0, 1] * 5
>>> m = CustomerClassifier(learner="logistic").fit(X, y)
>>> bool(m.predict_proba(X)[0, 1] < 0.5)
True
"""

from __future__ import annotations

from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from personify.errors import InvalidInput, Problem
from personify.models.encoding import Encoding, Scale, TablePreprocessor
from personify.models.evaluation import check_binary

Learner = Literal["lightgbm", "logistic"]
Calibration = Literal["none", "isotonic", "sigmoid"]

# Shallow, slowly learned trees with row and column sampling: on small tabular customer data
# (thousands of rows) deep trees overfit; these generalise (see benchmarks/models.py).
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 400,
    "learning_rate": 0.02,
    "num_leaves": 4,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.6,
    "reg_lambda": 5.0,
}
LOGISTIC_DEFAULTS: dict[str, Any] = {"C": 1.0, "max_iter": 2000}


class CustomerClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A probability of a yes/no outcome per customer from a table of features."""

    def __init__(
        self,
        learner: Learner = "lightgbm",
        params: dict[str, Any] | None = None,
        categorical: Encoding = "onehot",
        scale: Scale | None = None,
        calibration: Calibration = "none",
        random_state: int = 0,
    ) -> None:
        self.learner = learner
        self.params = params
        self.categorical = categorical
        self.scale = scale
        self.calibration = calibration
        self.random_state = random_state

    # -- building -------------------------------------------------------------------------
    def _estimator(self) -> Any:
        if self.learner == "lightgbm":
            params = {**LIGHTGBM_DEFAULTS, **(self.params or {})}
            return lgb.LGBMClassifier(
                **params, random_state=self.random_state, n_jobs=1, verbose=-1
            )
        if self.learner == "logistic":
            return LogisticRegression(
                **{**LOGISTIC_DEFAULTS, **(self.params or {})}, random_state=self.random_state
            )
        raise InvalidInput(
            f"unknown learner {self.learner!r}",
            hint="use lightgbm or logistic",
            problems=[Problem("learner", "must be lightgbm or logistic")],
        )

    def _preprocessor(self) -> TablePreprocessor:
        trees = self.learner == "lightgbm"
        scale = self.scale or ("none" if trees else "zscore")
        return TablePreprocessor(scale=scale, categorical=self.categorical, impute=not trees)

    # -- estimator contract ---------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any) -> CustomerClassifier:
        if self.calibration not in ("none", "isotonic", "sigmoid"):
            raise InvalidInput(
                f"unknown calibration {self.calibration!r}",
                hint="use none, isotonic or sigmoid",
                problems=[Problem("calibration", "must be none, isotonic or sigmoid")],
            )
        yy = check_binary(y)
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.preprocessor_ = self._preprocessor()
        matrix = self.preprocessor_.fit_transform(X, yy)
        self.encoded_names_ = list(self.preprocessor_.feature_names_out_)
        # One BLAS/OpenMP thread: customer tables are small, and spinning thread pools on a
        # busy shared machine made logistic regression several times slower in measurement.
        with threadpool_limits(1):
            self.estimator_ = self._estimator().fit(self._named(matrix), yy)
        self.calibrator_ = self._fit_calibrator(X, yy) if self.calibration != "none" else None
        return self

    def _named(self, matrix: np.ndarray[Any, Any]) -> Any:
        if self.learner == "lightgbm":  # keeps feature names inside the booster
            return pd.DataFrame(matrix, columns=_safe_names(self.encoded_names_))
        return matrix

    def _raw(self, X: pd.DataFrame) -> np.ndarray[Any, Any]:
        matrix = self.preprocessor_.transform(X)
        return np.asarray(self.estimator_.predict_proba(self._named(matrix))[:, 1], dtype=float)

    def _fit_calibrator(self, X: pd.DataFrame, y: np.ndarray[Any, Any]) -> Any:
        """Isotonic or sigmoid map fitted on out-of-fold scores (never on fitted rows)."""
        oof = np.zeros(len(y))
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=self.random_state)
        plain = clone(self).set_params(calibration="none")
        for train, test in folds.split(X, y):
            oof[test] = clone(plain).fit(X.iloc[train], y[train])._raw(X.iloc[test])
        if self.calibration == "isotonic":
            return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(oof, y)
        return LogisticRegression().fit(_logit(oof).reshape(-1, 1), y)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray[Any, Any]:
        p = self._raw(X)
        if self.calibrator_ is not None:
            if isinstance(self.calibrator_, IsotonicRegression):
                p = np.asarray(self.calibrator_.predict(p), dtype=float)
            else:
                p = self.calibrator_.predict_proba(_logit(p).reshape(-1, 1))[:, 1]
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray[Any, Any]:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def score(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> float:
        """ROC-AUC (not accuracy): how well the scores rank positives above negatives."""
        return float(roc_auc_score(check_binary(y), self.predict_proba(X)[:, 1]))

    # -- explanations ---------------------------------------------------------------------
    def importance(self) -> dict[str, float]:
        """Global importance per encoded feature, summing to 1 (gain, or |coef| on z-scores)."""
        if self.learner == "lightgbm":
            raw = self.estimator_.booster_.feature_importance(importance_type="gain")
        else:
            raw = np.abs(self.estimator_.coef_[0])
        total = float(np.sum(raw)) or 1.0
        pairs = sorted(zip(self.encoded_names_, raw, strict=True), key=lambda kv: -kv[1])
        return {name: float(v) / total for name, v in pairs}

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per customer, each encoded feature's additive contribution to the log-odds.

        LightGBM's exact TreeSHAP values (``pred_contrib``); for logistic regression the
        coefficient times the centred input. The ``bias`` column is the expected log-odds.
        """
        matrix = self.preprocessor_.transform(X)
        if self.learner == "lightgbm":
            contrib = self.estimator_.booster_.predict(
                self._named(matrix), pred_contrib=True, validate_features=False
            )
        else:
            coef = self.estimator_.coef_[0]
            contrib = np.column_stack(
                [matrix * coef, np.full(len(matrix), self.estimator_.intercept_[0])]
            )
        return pd.DataFrame(contrib, index=X.index, columns=[*self.encoded_names_, "bias"])

    def top_contributions(self, X: pd.DataFrame, k: int = 5) -> list[list[dict[str, Any]]]:
        """The ``k`` features that moved each customer's score most, signed, largest first."""
        contrib = self.contributions(X).drop(columns="bias")
        values = contrib.to_numpy()
        names = list(contrib.columns)
        out = []
        for row in values:
            order = np.argsort(-np.abs(row))[:k]
            out.append([{"feature": names[i], "contribution": float(row[i])} for i in order])
        return out


def _logit(p: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)), dtype=float)


def _safe_names(names: list[str]) -> list[str]:
    # LightGBM refuses some JSON-special characters in feature names.
    return [
        "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in n) + f"__{i}"
        for i, n in enumerate(names)
    ]
