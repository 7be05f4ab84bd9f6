"""Scoring one profile over HTTP needs its ``profiling`` consent."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.unit.models.test_models_api import ADMIN, client, engine, trained

from personify.facade import Personify

__all__ = ["client", "engine", "trained"]  # the models API fixtures, reused


def test_profile_score_needs_profiling_consent(client: TestClient, engine: Personify) -> None:
    pid = engine.lookup("user_id", "u1")
    assert client.get(f"/v1/models/churn/score/{pid}", headers=ADMIN).status_code == 200
    engine.track(user_id="u1", event="Consent Updated", properties={"profiling": False})
    engine.drain()
    res = client.get(f"/v1/models/churn/score/{pid}", headers=ADMIN)
    assert res.status_code == 403
    assert "profiling: refused" in res.json()["message"] and res.json()["hint"]


def test_training_sets_leave_out_profiles_without_profiling_consent() -> None:
    from tests.unit.models.synthetic import events

    from personify.models.sources import connect, register_frame
    from personify.models.training import event_dataset

    con = connect()
    register_frame(con, events(customers=120, days=200, seed=3))
    common = {"cutoff": "2024-06-01", "horizon_days": 60, "target": "churn"}
    frame, labels = event_dataset(con, "events", **common)
    refused = set(list(frame.index)[::3])
    kept, kept_labels = event_dataset(
        con, "events", consent=lambda ids: set(ids) - refused, **common
    )
    assert set(kept.index) == set(frame.index) - refused and refused
    by_id = dict(zip(frame.index, labels.tolist(), strict=True))
    assert kept_labels.tolist() == [by_id[i] for i in kept.index]
