"""From events to a registered model, batch scores in a store, and one profile on request."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tests.unit.models.synthetic import events

from personify.errors import InvalidInput, NotFound
from personify.models.registry import ModelRegistry
from personify.models.serving import score_all, score_one
from personify.models.sources import connect, register_frame
from personify.models.tables import read_customer_table
from personify.models.training import search_lightgbm, train_events, train_table
from personify.storage.memory.scores import MemoryScoreStore


@pytest.fixture(scope="module")
def con() -> object:
    c = connect()
    register_frame(c, events(customers=500, days=360, seed=5))
    return c


def test_training_from_events_uses_a_time_split_and_beats_recency(con: object) -> None:
    steps: list[str] = []
    result = train_events(
        con,
        "events",
        cutoff="2024-09-01",
        horizon_days=60,
        target="churn",
        progress=lambda what, i, n: steps.append(what),
    )
    m = result.metrics
    assert m["roc_auc"] > 0.7 and m["recency_roc_auc"] > 0.5
    assert m["logistic_roc_auc"] > 0.6 and len(m["lift"]) == 10
    assert result.data_window["features_as_of"].startswith("2024-07-03")
    assert "rfm_score" not in result.model.features
    assert "building features" in steps and result.kind == "churn"


def test_batch_scores_land_in_the_store_and_respect_consent(con: object, tmp_path: Path) -> None:
    result = train_events(con, "events", cutoff="2024-09-01", horizon_days=60)
    registry = ModelRegistry(tmp_path)
    meta = registry.register(
        "churn",
        result.model,
        kind=result.kind,
        features=result.model.features,
        params=result.params,
        metrics=result.metrics,
        data_window=result.data_window,
        promote=True,
    )
    model, meta = registry.load("churn")
    store = MemoryScoreStore()
    store.put("churn", 0, {"p0003": 0.5}, at="2024-01-01T00:00:00Z")
    report = score_all(
        model,
        con,
        "events",
        store,
        name="churn",
        version=meta.version,
        as_of="2024-12-01",
        consent=lambda ids: {i for i in ids if i != "p0003"},
    )
    assert report["scored"] == store.count("churn") == 499
    assert report["skipped_without_consent"] == 1
    assert "p0003" not in store.get_many(["p0003"])  # a refused profile loses its old score
    got = store.get_many(["p0001"])["p0001"]["churn"]
    assert 0 <= got["value"] <= 1 and got["version"] == meta.version
    assert report["drift"] is not None and "retrain" in report["drift"]


def test_score_one_matches_the_batch_score_and_explains_it(con: object) -> None:
    result = train_events(con, "events", cutoff="2024-09-01", horizon_days=60)
    store = MemoryScoreStore()
    score_all(result.model, con, "events", store, name="churn", version=1, as_of="2024-12-01")
    one = score_one(result.model, con, "events", "p0007", as_of="2024-12-01", top=3)
    batch = store.get_many(["p0007"])["p0007"]["churn"]["value"]
    assert one["value"] == pytest.approx(batch)
    assert len(one["top_contributions"]) == 3
    with pytest.raises(NotFound):
        score_one(result.model, con, "events", "nobody", as_of="2024-12-01")


def test_training_refuses_targets_and_windows_it_cannot_learn(con: object) -> None:
    with pytest.raises(InvalidInput):
        train_events(con, "events", cutoff="2024-09-01", target="upsell")
    with pytest.raises(InvalidInput) as err:
        train_events(con, "events", cutoff="2023-01-01", horizon_days=30)
    assert err.value.hint


def test_training_on_a_customer_csv(tmp_path: Path) -> None:
    rows = [
        {
            "id": f"c{i}",
            "plan": "basic" if i % 3 else "pro",
            "charges": "" if i == 5 else i % 50,
            "churned": "Yes" if (i % 3 and i % 50 > 20) or i % 7 == 0 else "No",
        }
        for i in range(300)
    ]
    path = tmp_path / "customers.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    X, y = read_customer_table(path, "churned", id_column="id")
    assert X["charges"].dtype == float and X["charges"].isna().sum() == 1
    assert X.index[0] == "c0" and set(y) == {0, 1}
    result = train_table(X, y, folds=3, repeats=1)
    assert result.metrics["lightgbm"]["mean"]["roc_auc"] > 0.8
    assert "logistic" in result.metrics and len(result.metrics["lift"]) == 10
    search = search_lightgbm(X, y, budget_s=30, max_trials=3)
    assert search["trials"][0]["params"] == {} and len(search["trials"]) <= 3


def test_customer_csv_errors_name_the_column(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    pd.DataFrame({"id": ["a", "b"], "label": ["yes", "maybe"]}).to_csv(path, index=False)
    with pytest.raises(InvalidInput) as err:
        read_customer_table(path, "label")
    assert err.value.problems[0].field == "label"
    with pytest.raises(InvalidInput):
        read_customer_table(path, "churn")
    with pytest.raises(NotFound):
        read_customer_table(tmp_path / "missing.csv", "label")
