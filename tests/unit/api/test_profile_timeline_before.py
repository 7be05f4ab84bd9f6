"""``GET /v1/profiles/{id}/events?before=``: an ISO-8601 timestamp, or a 400 naming it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import T0

from personify.api.app import create_app
from personify.clock import FixedClock
from personify.config import Settings
from personify.facade import Personify
from personify.platform import build

ADMIN = {"Authorization": "Bearer admin"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Personify]:
    # DuckDB events: the store that used to fail on a bad ``before`` (answered 503).
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        state_backend="memory",
        bus_backend="memory",
        event_store_backend="duckdb",
        write_keys="wk=web",
        admin_key="admin",
    )
    clock = FixedClock(T0)
    p = build(settings, clock)
    for hour in range(3):
        stamp = (T0 + timedelta(hours=hour)).isoformat()
        p.track(user_id="u1", event=f"E{hour}", timestamp=stamp)
    p.drain()
    yield p
    p.close()


@pytest.fixture(scope="module")
def client(engine: Personify) -> Iterator[TestClient]:
    with TestClient(create_app(engine, own_engine=False)) as c:
        yield c


def _events(client: TestClient, engine: Personify, before: str) -> list[str]:
    pid = engine.lookup("user_id", "u1")
    resp = client.get(f"/v1/profiles/{pid}/events", params={"before": before}, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    return [e["event"] for e in resp.json()["events"]]


@pytest.mark.parametrize(
    "before",
    [
        "garbage",
        "2026-13-01T00:00:00Z",
        "2024-05-01T13:00:00 01:00",
        "",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_a_before_that_is_not_a_timestamp_is_a_400_naming_before(
    client: TestClient, engine: Personify, before: str
) -> None:
    pid = engine.lookup("user_id", "u1")
    resp = client.get(f"/v1/profiles/{pid}/events", params={"before": before}, headers=ADMIN)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["problems"] == [
        {"field": "before", "message": "must be an ISO-8601 timestamp such as 2026-11-24T10:00:00Z"}
    ]
    assert "before=2026-11-24T10:00:00Z" in body["hint"]


@pytest.mark.parametrize(
    "before", ["2024-05-01T13:00:00Z", "2024-05-01T14:00:00+01:00", "2024-05-01T13:00:00"]
)
def test_before_pages_back_in_any_iso_form(
    client: TestClient, engine: Personify, before: str
) -> None:
    assert _events(client, engine, before) == ["E0"]
