"""The model registry: versions, metadata, promotion history and clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from personify.errors import Conflict, InvalidInput, NotFound
from personify.models.registry import ModelRegistry


def _register(reg: ModelRegistry, model: Any, *, promote: bool = False) -> int:
    return reg.register(
        "churn",
        model,
        kind="churn",
        features=["recency", "frequency"],
        params={"learning_rate": 0.05},
        metrics={"roc_auc": 0.81},
        data_window={"from": "2011-01-01", "to": "2011-09-01"},
        promote=promote,
    ).version


def test_versions_count_up_and_keep_their_metadata(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    assert [_register(reg, {"w": i}) for i in range(3)] == [1, 2, 3]
    metas = reg.versions("churn")
    assert [m.version for m in metas] == [1, 2, 3]
    assert metas[0].features == ("recency", "frequency")
    assert metas[0].metrics == {"roc_auc": 0.81}
    assert metas[0].data_window["to"] == "2011-09-01"
    assert (tmp_path / "churn" / "v2" / "model.joblib").is_file()
    assert (tmp_path / "churn" / "v2" / "meta.json").is_file()
    assert reg.names() == ["churn"]


def test_load_returns_latest_until_a_version_is_promoted(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    _register(reg, {"w": 1})
    _register(reg, {"w": 2})
    model, meta = reg.load("churn")
    assert model == {"w": 2} and meta.version == 2 and not meta.promoted
    reg.promote("churn", 1)
    model, meta = reg.load("churn")
    assert model == {"w": 1} and meta.promoted
    assert reg.load("churn", 2)[0] == {"w": 2}


def test_rollback_returns_to_the_previously_promoted_version(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    _register(reg, "a", promote=True)
    _register(reg, "b", promote=True)
    _register(reg, "c")
    assert reg.current("churn").version == 2
    assert reg.rollback("churn").version == 1
    assert reg.load("churn")[0] == "a"
    with pytest.raises(Conflict) as err:
        reg.rollback("churn")
    assert err.value.hint and "promote" in err.value.hint


def test_a_registry_survives_being_reopened(tmp_path: Path) -> None:
    _register(ModelRegistry(tmp_path), [1, 2], promote=True)
    again = ModelRegistry(tmp_path)
    assert again.load("churn")[0] == [1, 2]
    assert again.current("churn").promoted
    assert _register(again, [3]) == 2


def test_unknown_names_and_versions_raise_not_found_with_hints(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    with pytest.raises(NotFound) as err:
        reg.load("churn")
    assert err.value.hint and "train" in err.value.hint
    _register(reg, 1)
    with pytest.raises(NotFound) as err:
        reg.promote("churn", 7)
    assert err.value.hint == "stored versions: 1"
    with pytest.raises(NotFound):
        reg.versions("clv")


def test_bad_model_names_are_refused(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    with pytest.raises(InvalidInput) as err:
        reg.register("../evil", 1, kind="x", features=[], params={}, metrics={}, data_window={})
    assert err.value.problems[0].field == "name"
    assert not any(tmp_path.iterdir())


def test_a_failed_save_leaves_no_version_behind(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)

    class Unpicklable:
        def __reduce__(self) -> Any:
            raise TypeError("cannot pickle")

    with pytest.raises(TypeError):
        _register(reg, Unpicklable())
    assert reg.names() == []
    assert _register(reg, 1) == 1


def test_retraining_is_due_on_drift_or_age(tmp_path: Path) -> None:
    from dataclasses import replace

    from personify.models.service import retraining_due

    reg = ModelRegistry(tmp_path)
    _register(reg, 1)
    meta = reg.current("churn")
    assert retraining_due(meta, None) == {"due": False, "reasons": []}
    drifted = {"retrain": True, "threshold": 0.2, "drifted": ["recency_days"]}
    assert retraining_due(meta, drifted)["reasons"] == ["drift over PSI 0.2: recency_days"]
    old = replace(meta, created_at="2020-01-01T00:00:00+00:00")
    assert retraining_due(old, None)["due"]


def test_a_version_number_taken_by_another_process_is_skipped(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    _register(reg, "a")
    other = ModelRegistry(tmp_path)
    original = other._numbers
    calls = {"n": 0}

    def stale(name: str) -> list[int]:
        # The first look misses v2, which a second writer publishes meanwhile.
        calls["n"] += 1
        if calls["n"] == 1:
            _register(reg, "b")
            return [1]
        return original(name)

    other._numbers = stale  # type: ignore[method-assign]
    meta = other.register(
        "churn", "c", kind="churn", features=[], params={}, metrics={}, data_window={}
    )
    assert meta.version == 3
    assert [reg.load("churn", v)[0] for v in (1, 2, 3)] == ["a", "b", "c"]
