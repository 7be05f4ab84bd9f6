"""Contract: every ScoreStore adapter keeps the latest score per profile and model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from personify.errors import InvalidInput
from personify.storage.memory.scores import MemoryScoreStore
from personify.storage.sqlite.scores import SqlScoreStore

SCORES = {
    "memory": lambda _: MemoryScoreStore(),
    "sqlite": lambda d: SqlScoreStore.open(d / "scores.sqlite"),
}


@pytest.fixture(params=sorted(SCORES))
def score_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    store = SCORES[request.param](tmp_path)
    yield store
    store.close()


def test_put_then_get_many_returns_value_version_and_time(score_store: Any) -> None:
    score_store.put("churn", 1, {"p1": 0.25, "p2": 0.75}, "2024-01-01T00:00:00.000000Z")
    got = score_store.get_many(["p1", "p2", "p3"])
    assert got == {
        "p1": {"churn": {"value": 0.25, "version": 1, "at": "2024-01-01T00:00:00.000000Z"}},
        "p2": {"churn": {"value": 0.75, "version": 1, "at": "2024-01-01T00:00:00.000000Z"}},
    }
    assert score_store.count() == 2 and score_store.count("churn") == 2


def test_put_upserts_per_profile_and_keeps_other_models(score_store: Any) -> None:
    score_store.put("churn", 1, {"p1": 0.2, "p2": 0.3}, "2024-01-01T00:00:00.000000Z")
    score_store.put("clv", 3, {"p1": 120.0}, "2024-01-01T00:00:00.000000Z")
    score_store.put("churn", 2, {"p1": 0.9}, "2024-02-01T00:00:00.000000Z")
    got = score_store.get_many(["p1", "p2"])
    assert got["p1"]["churn"] == {"value": 0.9, "version": 2, "at": "2024-02-01T00:00:00.000000Z"}
    assert got["p1"]["clv"]["value"] == 120.0
    assert got["p2"]["churn"]["version"] == 1
    assert score_store.count("churn") == 2 and score_store.count("clv") == 1
    assert score_store.count("propensity") == 0


def test_delete_profiles_removes_every_score_of_those_profiles(score_store: Any) -> None:
    score_store.put("churn", 1, {"p1": 0.2, "p2": 0.3}, "2024-01-01T00:00:00.000000Z")
    score_store.put("clv", 1, {"p1": 5.0}, "2024-01-01T00:00:00.000000Z")
    assert score_store.delete_profiles(["p1", "unknown"]) == 2
    assert score_store.get_many(["p1", "p2"]) == {
        "p2": {"churn": {"value": 0.3, "version": 1, "at": "2024-01-01T00:00:00.000000Z"}}
    }
    assert score_store.count() == 1


def test_many_profiles_are_read_back_in_chunks(score_store: Any) -> None:
    scores = {f"p{i}": i / 2000 for i in range(1200)}
    score_store.put("churn", 1, scores, "2024-01-01T00:00:00.000000Z")
    got = score_store.get_many(list(scores))
    assert len(got) == 1200
    assert got["p1199"]["churn"]["value"] == pytest.approx(1199 / 2000)


def test_non_finite_scores_and_empty_names_are_refused(score_store: Any) -> None:
    with pytest.raises(InvalidInput) as err:
        score_store.put("churn", 1, {"p1": float("nan"), "p2": 0.1}, "2024-01-01T00:00:00Z")
    assert err.value.problems[0].field == "scores.p1"
    with pytest.raises(InvalidInput):
        score_store.put("", 1, {"p1": 0.1}, "2024-01-01T00:00:00Z")
    assert score_store.count() == 0


def test_an_empty_put_changes_nothing(score_store: Any) -> None:
    score_store.put("churn", 1, {}, "2024-01-01T00:00:00Z")
    assert score_store.count() == 0
    assert score_store.get_many([]) == {}


def test_sqlite_scores_survive_a_reopen(tmp_path: Path) -> None:
    store = SqlScoreStore.open(tmp_path / "scores.sqlite")
    store.put("churn", 4, {"p1": 0.5}, "2024-01-01T00:00:00.000000Z")
    store.close()
    again = SqlScoreStore.open(tmp_path / "scores.sqlite")
    assert again.get_many(["p1"])["p1"]["churn"]["version"] == 4
    again.close()
