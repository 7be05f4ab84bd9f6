"""The experiments API: assignment, analysis, power and OPE, with precise errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine

from personify.api.app import create_app

ADMIN = {"Authorization": "Bearer admin"}


@pytest.fixture
def client() -> Iterator[TestClient]:
    p, _ = memory_engine()
    with TestClient(create_app(p, own_engine=False)) as test_client:
        yield test_client
    p.close()


def test_assignment_follows_growthbook(client: TestClient) -> None:
    resp = client.post(
        "/v1/experiments/assign",
        json={"experiment": {"key": "my-test", "variations": [0, 1]}, "attributes": {"id": "1"}},
        headers=ADMIN,
    )
    assert resp.status_code == 200
    assert (resp.json()["value"], resp.json()["hash_used"]) == (1, True)
    bad = client.post("/v1/experiments/assign", json={"experiment": {"key": ""}}, headers=ADMIN)
    assert bad.status_code == 400 and {"key", "variations"} <= {
        p["field"] for p in bad.json()["problems"]
    }


def test_analysis_from_sufficient_statistics(client: TestClient) -> None:
    body = {
        "arms": [
            {"name": "A", "type": "mean", "sum": 1396.87, "sum_squares": 52377.9767, "n": 3407},
            {"name": "B", "type": "mean", "sum": 2422.7, "sum_squares": 134698.29, "n": 3461},
        ]
    }
    resp = client.post("/v1/experiments/analyze", json=body, headers=ADMIN)
    assert resp.status_code == 200
    relative = resp.json()["results"][0]["relative"]
    assert round(relative["estimate"], 5) == 0.70732 and round(relative["p_value"], 5) == 0.06191
    body["arms"][1].pop("sum_squares")
    missing = client.post("/v1/experiments/analyze", json=body, headers=ADMIN)
    assert missing.status_code == 400 and "sum_squares" in missing.json()["message"]
    seq = client.post(
        "/v1/experiments/analyze",
        json={
            "arms": [{"name": "A", "type": "proportion", "sum": 1396, "n": 3000},
                     {"name": "B", "type": "proportion", "sum": 2422, "n": 3461}],
            "method": "sequential",
            "prior": {"mean": 0, "variance": 1},
        },
        headers=ADMIN,
    )  # fmt: skip
    assert seq.status_code == 200 and seq.json()["srm"]["mismatch"] is True


def test_power_and_ope(client: TestClient) -> None:
    power = client.post(
        "/v1/experiments/power", json={"baseline": 0.05, "lift": 0.1, "users": 20000}, headers=ADMIN
    )
    assert power.status_code == 200 and power.json()["users_per_arm"] == 31231
    assert (
        client.post("/v1/experiments/power", json={"baseline": 0.05}, headers=ADMIN).status_code
        == 400
    )
    assert (
        client.post("/v1/experiments/power", json={"baseline": 2}, headers=ADMIN).status_code == 400
    )
    # Inputs with no finite answer are a clear 400, not a server error.
    for extreme in ({"alpha": 5e-324, "lift": 0.05}, {"lift": -1.0}, {"users": 2, "power": 0.999}):
        r = client.post("/v1/experiments/power", json={"baseline": 0.05, **extreme}, headers=ADMIN)
        assert r.status_code in (200, 400), (extreme, r.status_code, r.text)
        if r.status_code == 400:
            assert r.json()["hint"]
    r = client.post(
        "/v1/experiments/power",
        json={"baseline": 0.05, "alpha": 5e-324, "lift": 0.05},
        headers=ADMIN,
    )
    assert r.status_code == 400 and "finite" in r.json()["message"]
    log = [
        {"action": "a", "propensity": 0.5, "reward": 1},
        {"action": "b", "propensity": 0.5, "reward": 0},
    ] * 20
    ope = client.post("/v1/experiments/ope", json={"log": log, "target": "arm:a"}, headers=ADMIN)
    assert ope.status_code == 200 and ope.json()["ipw"]["value"] == pytest.approx(1.0)
    bad = client.post("/v1/experiments/ope", json={"log": log, "target": "arm:z"}, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["hint"]


def test_the_admin_key_is_required(client: TestClient) -> None:
    assert (
        client.post("/v1/experiments/power", json={"baseline": 0.05, "lift": 0.1}).status_code
        == 401
    )
