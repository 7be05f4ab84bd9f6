"""The customer classifier, its encodings, metrics and cross-validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from personify.errors import InvalidInput
from personify.models.encoding import TablePreprocessor
from personify.models.evaluation import classification_metrics, cross_validate, lift_table
from personify.models.supervised import CustomerClassifier


def _table(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "pro", "team"], n)
    tenure = rng.uniform(0, 60, n)
    spend = rng.gamma(2, 30, n)
    logit = -1.0 + 1.5 * (plan == "basic") - 0.05 * tenure + 0.004 * spend
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"plan": plan, "tenure": tenure, "spend": spend})
    X.loc[rng.choice(n, 20, replace=False), "spend"] = np.nan
    return X, y


@pytest.mark.parametrize("learner", ["lightgbm", "logistic"])
def test_both_learners_rank_customers_far_better_than_chance(learner: str) -> None:
    X, y = _table()
    model = CustomerClassifier(learner=learner).fit(X[:400], y[:400])  # type: ignore[arg-type]
    assert model.score(X[400:], y[400:]) > 0.75
    proba = model.predict_proba(X[400:])
    assert proba.shape == (200, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(X[400:]).tolist()) <= {0, 1}


def test_estimator_contract_init_stores_params_and_clone_works() -> None:
    model = CustomerClassifier(learner="logistic", params={"C": 0.5}, calibration="sigmoid")
    assert model.get_params()["params"] == {"C": 0.5}
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "estimator_")


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibration_makes_an_overconfident_model_honest(method: str) -> None:
    X, y = _table(1200, seed=1)
    raw = CustomerClassifier(
        params={"n_estimators": 50, "learning_rate": 0.3, "num_leaves": 31, "min_child_samples": 2}
    ).fit(X[:800], y[:800])
    cal = clone(raw).set_params(calibration=method).fit(X[:800], y[:800])
    m_raw = classification_metrics(y[800:], raw.predict_proba(X[800:])[:, 1])
    m_cal = classification_metrics(y[800:], cal.predict_proba(X[800:])[:, 1])
    # The raw model is deliberately overfit (overconfident): calibration must fix that.
    assert m_cal["brier"] < m_raw["brier"] and m_cal["log_loss"] < m_raw["log_loss"]
    assert m_cal["roc_auc"] > m_raw["roc_auc"] - 0.02


def test_contributions_add_up_to_the_log_odds() -> None:
    X, y = _table()
    model = CustomerClassifier().fit(X, y)
    contrib = model.contributions(X[:5])
    raw = model.predict_proba(X[:5])[:, 1]
    assert np.allclose(1 / (1 + np.exp(-contrib.sum(axis=1))), raw, atol=1e-6)
    top = model.top_contributions(X[:1], k=2)[0]
    assert len(top) == 2 and abs(top[0]["contribution"]) >= abs(top[1]["contribution"])
    importance = model.importance()
    assert sum(importance.values()) == pytest.approx(1.0)
    assert next(iter(importance)) in {"plan_basic", "tenure", "spend"}


def test_target_encoding_is_out_of_fold_on_training_rows() -> None:
    # A category seen once has, out of fold, no statistics of its own: its training row must
    # not be encoded with its own label (that would be a leak).
    X = pd.DataFrame({"city": [f"c{i}" for i in range(40)]})
    y = np.array([0, 1] * 20)
    encoded = TablePreprocessor(categorical="target").fit_transform(X, y)
    assert (np.abs(encoded[:, 0] - y) > 0.3).all()
    # Scoring rows later uses the full-data statistics, which do know each city.
    refit = TablePreprocessor(categorical="target").fit(X, y).transform(X)
    assert np.corrcoef(refit[:, 0], y)[0, 1] > 0.5


def test_unknown_categories_at_scoring_time_do_not_break_one_hot() -> None:
    X, y = _table()
    model = CustomerClassifier(learner="logistic").fit(X, y)
    new = X[:2].assign(plan=["enterprise", "pro"])
    assert model.predict_proba(new).shape == (2, 2)


def test_bad_settings_and_labels_are_refused() -> None:
    X, y = _table(100)
    with pytest.raises(InvalidInput) as err:
        CustomerClassifier(learner="forest").fit(X, y)  # type: ignore[arg-type]
    assert err.value.hint == "use lightgbm or logistic"
    with pytest.raises(InvalidInput):
        CustomerClassifier(calibration="platt").fit(X, y)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        CustomerClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(InvalidInput):
        CustomerClassifier().fit(X, ["yes"] * 50 + ["no"] * 50)
    model = CustomerClassifier(learner="logistic").fit(X, y)
    with pytest.raises(InvalidInput) as err2:
        model.predict_proba(X.drop(columns="tenure"))
    assert err2.value.problems[0].field == "tenure"


def test_metrics_and_lift_table() -> None:
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    m = classification_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(19 / 21)
    assert 0 < m["brier"] < 0.25 and m["log_loss"] > 0 and m["base_rate"] == 0.3
    table = lift_table(y, p, bins=5)
    assert [r["positives"] for r in table] == [2, 0, 1, 0, 0]
    assert table[0]["lift"] == pytest.approx(1.0 / 0.3)
    assert table[-1]["cumulative_gain"] == 1.0


def test_cross_validation_reports_every_fold() -> None:
    X, y = _table(300)
    seen = []
    result = cross_validate(
        CustomerClassifier(learner="logistic"),
        X,
        y,
        folds=3,
        repeats=2,
        progress=lambda i, n: seen.append((i, n)),
    )
    assert len(result["folds"]) == 6 and seen[-1] == (6, 6)
    assert 0.5 < result["mean"]["roc_auc"] <= 1 and result["std"]["roc_auc"] >= 0
