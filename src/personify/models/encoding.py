"""Turning a customer table into model input: imputation, scaling and categorical encoding.

Numbers can be left as they are (trees do not care), min-max scaled or z-scored. Categories
are one-hot encoded (unknown values at scoring time become all zeros) or target encoded; the
target encoder is scikit-learn's, whose ``fit_transform`` encodes each training row with
statistics from the other folds only (out-of-fold), so a row's own label never leaks into
its encoding.

>>> import pandas as pd
>>> X = pd.DataFrame({"plan": ["a", "b", "a"], "spend": [1.0, None, 3.0]})
>>> prep = TablePreprocessor(scale="minmax").fit(X)
>>> prep.transform(X).tolist()
[[0.0, 1.0, 0.0], [0.5, 0.0, 1.0], [1.0, 1.0, 0.0]]
>>> prep.feature_names_out_
['spend', 'plan_a', 'plan_b']
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler, TargetEncoder

from personify.errors import InvalidInput, Problem

Scale = Literal["none", "minmax", "zscore"]
Encoding = Literal["onehot", "target"]


def categorical_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding text, booleans or categories (everything else is numeric)."""
    return [
        c
        for c in frame.columns
        if frame[c].dtype == object
        or isinstance(frame[c].dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(frame[c])
        or pd.api.types.is_string_dtype(frame[c])
    ]


def _scaler(scale: Scale) -> Any:
    if scale == "minmax":
        return MinMaxScaler()
    if scale == "zscore":
        return StandardScaler()
    return "passthrough"


class TablePreprocessor(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Impute, scale and encode a pandas frame into a float matrix (scikit-learn transformer).

    ``impute`` fills missing numbers with the training median (logistic regression needs it;
    LightGBM handles missing values itself, so the LightGBM learner turns it off).
    """

    def __init__(
        self, scale: Scale = "none", categorical: Encoding = "onehot", impute: bool = True
    ) -> None:
        self.scale = scale
        self.categorical = categorical
        self.impute = impute

    def _build(self, frame: pd.DataFrame) -> ColumnTransformer:
        if self.scale not in ("none", "minmax", "zscore"):
            raise InvalidInput(
                f"unknown scaling {self.scale!r}",
                hint="use none, minmax or zscore",
                problems=[Problem("scale", "must be none, minmax or zscore")],
            )
        if self.categorical not in ("onehot", "target"):
            raise InvalidInput(
                f"unknown categorical encoding {self.categorical!r}",
                hint="use onehot or target",
                problems=[Problem("categorical", "must be onehot or target")],
            )
        cats = categorical_columns(frame)
        nums = [c for c in frame.columns if c not in cats]
        num_steps: list[tuple[str, Any]] = []
        if self.impute:
            num_steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
        num_steps.append(("scale", _scaler(self.scale)))
        if self.categorical == "onehot":
            cat: Any = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        else:
            cat = TargetEncoder(
                target_type="binary", cv=StratifiedKFold(5, shuffle=True, random_state=0)
            )
        return ColumnTransformer(
            [("num", Pipeline(num_steps), nums), ("cat", cat, cats)],
            verbose_feature_names_out=False,
        )

    def _as_text(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        for c in self.categorical_:
            out[c] = out[c].astype(object).where(out[c].notna(), "missing").astype(str)
        return out

    def fit(self, X: pd.DataFrame, y: Any = None) -> TablePreprocessor:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **_: Any) -> np.ndarray[Any, Any]:
        """Fit and encode; with target encoding the rows are encoded out-of-fold."""
        frame = _frame(X)
        self.columns_ = list(frame.columns)
        self.categorical_ = categorical_columns(frame)
        if self.categorical == "target" and self.categorical_ and y is None:
            raise InvalidInput(
                "target encoding needs the labels",
                hint="pass y to fit, or use categorical='onehot'",
            )
        self.transformer_ = self._build(frame)
        out = self.transformer_.fit_transform(self._as_text(frame), y)
        self.feature_names_out_ = [str(n) for n in self.transformer_.get_feature_names_out()]
        return np.asarray(out, dtype=float)

    def transform(self, X: pd.DataFrame) -> np.ndarray[Any, Any]:
        frame = _frame(X)
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise InvalidInput(
                f"the input lacks column(s) {', '.join(missing[:10])}",
                hint="score with the same columns the model was trained on",
                problems=[Problem(c, "missing") for c in missing[:20]],
            )
        return np.asarray(self.transformer_.transform(self._as_text(frame[self.columns_])), float)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray[Any, Any]:
        return np.asarray(self.feature_names_out_, dtype=object)


def _frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    return pd.DataFrame(np.asarray(X), columns=[f"x{i}" for i in range(np.shape(X)[1])])
