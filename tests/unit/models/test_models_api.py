"""``/v1/models``: list, report, promote, roll back and score one profile (admin key)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import T0, memory_engine
from tests.unit.models.synthetic import events

from personify.api.app import create_app
from personify.facade import Personify
from personify.models.registry import ModelRegistry
from personify.models.sources import connect, register_frame
from personify.models.training import train_events
from personify.profiles.records import iso

ADMIN = {"Authorization": "Bearer admin"}


@pytest.fixture(scope="module")
def trained() -> object:
    con = connect()
    register_frame(con, events(customers=300, days=300, seed=4))
    return train_events(con, "events", cutoff="2024-08-01", horizon_days=60)


@pytest.fixture
def engine(tmp_path: Path, trained: object) -> Personify:
    p = memory_engine(data_dir=tmp_path)[0]
    registry = ModelRegistry(tmp_path / "models")
    for promote in (True, False):
        registry.register(
            "churn",
            trained.model,
            kind="churn",  # type: ignore[attr-defined]
            features=["x"],
            params={},
            metrics={"roc_auc": 0.8},
            data_window={},
            promote=promote,
        )
    registry.register(
        "notes",
        {"not": "a scorer"},
        kind="other",
        features=[],
        params={},
        metrics={},
        data_window={},
    )
    start = T0 - timedelta(days=200)  # the engine's clock stands at T0
    for i in range(6):
        p.track(
            user_id="u1",
            event="Order Completed",
            properties={"revenue": 20 + i},
            timestamp=iso(start + timedelta(days=30 * i)),
        )
    p.drain()
    return p


@pytest.fixture
def client(engine: Personify) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


def test_list_report_promote_and_rollback(client: TestClient) -> None:
    listed = client.get("/v1/models", headers=ADMIN).json()["models"]
    assert [m["name"] for m in listed] == ["churn", "notes"]
    assert [v["promoted"] for v in listed[0]["versions"]] == [True, False]
    report = client.get("/v1/models/churn", headers=ADMIN).json()
    assert report["version"] == 1 and "importance" in report
    assert (
        client.post("/v1/models/churn/promote", json={"version": 2}, headers=ADMIN).json()[
            "version"
        ]
        == 2
    )
    assert client.post("/v1/models/churn/rollback", headers=ADMIN).json()["version"] == 1


def test_score_one_profile_on_request(client: TestClient, engine: Personify) -> None:
    pid = engine.lookup("user_id", "u1")
    body = client.get(f"/v1/models/churn/score/{pid}?top=3", headers=ADMIN).json()
    assert body["profile_id"] == pid and body["version"] == 1
    assert 0 <= body["value"] <= 1 and len(body["top_contributions"]) == 3


def test_errors_say_what_to_do(client: TestClient) -> None:
    assert client.get("/v1/models").status_code == 401
    missing = client.get("/v1/models/clv", headers=ADMIN)
    assert missing.status_code == 404 and "hint" in missing.json()
    bad = client.post("/v1/models/churn/promote", json={"version": 9}, headers=ADMIN)
    assert bad.status_code == 404 and "stored versions: 1, 2" in bad.json()["hint"]
    invalid = client.post("/v1/models/churn/promote", json={"version": "x"}, headers=ADMIN)
    assert invalid.status_code in (400, 422)
    assert client.get("/v1/models/churn/score/p_nobody", headers=ADMIN).status_code == 404
    not_scorer = client.get("/v1/models/notes/score/p_x", headers=ADMIN)
    assert not_scorer.status_code == 400
