"""``personify train`` and ``personify models``: train, list, promote, roll back, report, score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.unit.models.synthetic import events
from typer.testing import CliRunner

from personify.cli.main import app
from personify.profiles.records import EVENT_COLUMNS
from personify.storage.duckdb import DuckDbEventStore
from personify.storage.sqlite.scores import SqlScoreStore

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERSONIFY_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 240
    plan = rng.choice(["basic", "pro"], n)
    tenure = rng.uniform(0, 60, n)
    churn = (rng.uniform(size=n) < np.where(plan == "basic", 0.6, 0.1) * (tenure < 40)).astype(int)
    pd.DataFrame(
        {
            "id": range(n),
            "plan": plan,
            "tenure": tenure.round(1),
            "Churn": np.where(churn, "Yes", "No"),
        }
    ).to_csv(path, index=False)
    return path


def _event_store(data_dir: Path) -> None:
    frame = events(customers=200, days=300, seed=9)
    store = DuckDbEventStore(data_dir / "events.duckdb")
    rows = []
    for i, r in enumerate(frame.to_dict("records")):
        row = dict.fromkeys(EVENT_COLUMNS)
        row.update(
            message_id=f"m{i}",
            profile_id=r["profile_id"],
            type=r["type"],
            event=r["event"],
            session_id=r["session_id"],
            payload=r["payload"],
            timestamp=r["timestamp"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            received_at=r["timestamp"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        )
        rows.append(row)
    store.append(rows)
    store.close()


def test_train_csv_then_list_promote_rollback_and_report(tmp_path: Path) -> None:
    path = _csv(tmp_path / "customers.csv")
    args = [
        "train",
        "csv",
        str(path),
        "--label",
        "Churn",
        "--id-column",
        "id",
        "--folds",
        "3",
        "--repeats",
        "1",
    ]
    first = runner.invoke(app, [*args, "--search-seconds", "2"])
    assert first.exit_code == 0, first.output
    assert "searching" in first.output
    assert "lightgbm roc_auc" in first.output and "logistic roc_auc" in first.output
    assert runner.invoke(app, [*args, "--learner", "logistic"]).exit_code == 0
    listed = runner.invoke(app, ["models", "list", "--json"])
    versions = json.loads(listed.output)
    assert [(v["version"], v["promoted"]) for v in versions] == [(1, False), (2, True)]
    assert runner.invoke(app, ["models", "rollback", "churn"]).exit_code == 0
    report = json.loads(runner.invoke(app, ["models", "report", "churn", "--json"]).output)
    assert report["version"] == 1 and report["promoted"]
    assert report["data_window"]["file"] == str(path)
    assert report["metrics"]["search"]["trials"] >= 1
    assert "importance" in report
    promoted = runner.invoke(app, ["models", "promote", "churn", "2"])
    assert promoted.exit_code == 0 and "v2 is now serving" in promoted.output


def test_train_churn_on_the_event_store_and_score_every_profile(data_dir: Path) -> None:
    _event_store(data_dir)
    trained = runner.invoke(app, ["train", "churn", "--horizon", "60", "--json"])
    assert trained.exit_code == 0, trained.output
    meta = json.loads(trained.output)["model"]
    assert meta["kind"] == "churn" and meta["metrics"]["recency_roc_auc"] > 0
    scored = runner.invoke(app, ["models", "score", "churn", "--as-of", "2024-10-28", "--json"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.output)["scored"] == 200
    store = SqlScoreStore.open(data_dir / "scores.sqlite")
    assert store.count("churn") == 200
    store.close()
    report = json.loads(runner.invoke(app, ["models", "report", "churn", "--json"]).output)
    assert report["drift"]["at"] == "2024-10-28T00:00:00.000000Z" and "retrain" in report["drift"]
    assert report["retraining"]["due"] == report["drift"]["retrain"]
    shown = runner.invoke(app, ["models", "report", "churn"])
    assert "drift at the last scoring" in shown.output


def test_train_clv_then_score_lifetime_value(data_dir: Path) -> None:
    _event_store(data_dir)
    trained = runner.invoke(app, ["train", "clv", "--horizon", "60", "--evaluate", "--json"])
    assert trained.exit_code == 0, trained.output
    meta = json.loads(trained.output)["model"]
    assert meta["kind"] == "clv" and meta["params"]["r"] > 0
    comparison = meta["metrics"]["comparison"]
    assert comparison["gradient_boosting"]["mae"] >= 0 and comparison["customers"] > 0
    scored = runner.invoke(app, ["models", "score", "clv", "--as-of", "2024-10-28", "--json"])
    assert scored.exit_code == 0, scored.output
    store = SqlScoreStore.open(data_dir / "scores.sqlite")
    assert store.count("clv") == store.count("p_alive") == json.loads(scored.output)["scored"] > 0
    store.close()
    report = runner.invoke(app, ["models", "report", "clv"])
    assert report.exit_code == 0 and "clv" in report.output


def test_cluster_writes_scores_and_a_segments_file(data_dir: Path, tmp_path: Path) -> None:
    _event_store(data_dir)
    out = tmp_path / "clusters.yaml"
    done = runner.invoke(
        app,
        [
            "models",
            "cluster",
            "--as-of",
            "2024-10-28",
            "--k-max",
            "4",
            "--segments-yaml",
            str(out),
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    body = json.loads(done.output)
    assert 2 <= body["k"] <= 4 and len(body["segments"]) == body["k"]
    written = yaml.safe_load(out.read_text())["segments"]
    assert written["cluster_0"]["condition"] == {"scores.cluster": 0}
    store = SqlScoreStore.open(data_dir / "scores.sqlite")
    assert store.count("cluster") == sum(c["size"] for c in body["clusters"])
    store.close()
    bad = runner.invoke(app, ["models", "cluster", "--method", "spectral"])
    assert bad.exit_code == 2 and "kmeans, dbscan or ward" in bad.output


def test_errors_are_explained_not_tracebacks(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["models", "report", "churn"])
    assert missing.exit_code == 2 and "no model named 'churn'" in missing.output
    no_store = runner.invoke(app, ["train", "churn"])
    assert no_store.exit_code == 2 and "no event store" in no_store.output
    path = _csv(tmp_path / "c.csv")
    bad = runner.invoke(app, ["train", "csv", str(path), "--label", "plan"])
    assert bad.exit_code == 2 and "not yes/no" in bad.output
    rollback = runner.invoke(app, ["models", "rollback", "churn"])
    assert rollback.exit_code == 2


def test_retrain_checks_each_model_and_retrains_when_due(data_dir: Path) -> None:
    _event_store(data_dir)
    trained = runner.invoke(app, ["train", "churn", "--horizon", "60", "--json"])
    assert trained.exit_code == 0, trained.output
    fresh = runner.invoke(app, ["models", "retrain", "--json"])
    assert fresh.exit_code == 0, fresh.output
    assert json.loads(fresh.output) == [{"model": "churn", "retrained": False, "why": "not due"}]
    forced = runner.invoke(app, ["models", "retrain", "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    [entry] = json.loads(forced.output)
    assert entry["retrained"] and entry["version"] == 2 and entry["scored"] == 200
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).output)
    assert any(m["name"] == "churn" and m["version"] == 2 and m["promoted"] for m in listed)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["train", "churn", "--cutoff", "9999-12-31"], "outside 1970-2200"),
        (["train", "churn", "--cutoff", "garbage"], "not a usable date"),
        (["train", "purchase", "--horizon", "999999999999"], "--horizon"),
        (["train", "clv", "--end", "1900-01-01"], "outside 1970-2200"),
        (["models", "score", "churn", "--as-of", "9999-12-31T23:59:59-12:00"], "outside"),
        (["models", "cluster", "--as-of", "2300-01-01"], "outside 1970-2200"),
    ],
)
def test_dates_and_horizons_out_of_range_are_refused_before_any_work(
    args: list[str], said: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output  # a usage error, not a traceback
    assert said in " ".join(result.output.split())
