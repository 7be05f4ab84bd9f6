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
