"""Laplace noise on released segment sizes."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine

from personify.api.app import create_app
from personify.errors import InvalidInput
from personify.privacy.dp import noisy_counts

ADMIN = {"Authorization": "Bearer admin"}


def test_noise_has_the_laplace_scale_and_is_unbiased() -> None:
    rng = np.random.default_rng(11)
    counts = {f"s{i}": 1000 for i in range(20_000)}
    released = np.array(list(noisy_counts(counts, epsilon=0.5, rng=rng).values())) - 1000
    assert abs(released.mean()) < 0.1
    # Laplace(b) has mean absolute deviation b = 1 / epsilon (rounding adds ~0.04 here)
    assert np.abs(released).mean() == pytest.approx(2.0, rel=0.05)
    tight = np.array(list(noisy_counts(counts, epsilon=5.0, rng=rng).values())) - 1000
    assert np.abs(tight).mean() < 0.5


def test_counts_are_never_negative_and_epsilon_must_be_positive() -> None:
    out = noisy_counts({"tiny": 0}, epsilon=0.01, rng=np.random.default_rng(1))
    assert out["tiny"] >= 0
    with pytest.raises(InvalidInput):
        noisy_counts({"a": 1}, epsilon=0)


def test_endpoint_is_off_unless_configured() -> None:
    p, _ = memory_engine()
    with TestClient(create_app(p)) as client:
        off = client.get("/v1/privacy/aggregates/segments", headers=ADMIN)
        assert off.status_code == 404 and "DP_EPSILON" in off.json()["hint"]
    p, _ = memory_engine(privacy={"dp_epsilon": 1.0})
    with TestClient(create_app(p)) as client:
        res = client.get("/v1/privacy/aggregates/segments", headers=ADMIN)
        assert res.status_code == 200 and res.json() == {"epsilon": 1.0, "sizes": {}}
