"""Backpressure: collection waits while processing is too far behind, then answers 503."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence

import orjson
import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine

from personify.api.app import create_app
from personify.errors import Unavailable
from personify.profiles.processor import Processing

AUTH = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}


class StuckProcessing:
    """A stand-in for processing that reports a fixed lag (our own logic under test)."""

    last_error: str | None = None
    running = True
    position = 0

    def __init__(self, lag: int) -> None:
        self._lag = lag

    def lag(self) -> int:
        return self._lag

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def step(self) -> int:
        return 0

    def drain(self, timeout: float = 600.0) -> None: ...

    def forget(self, profile_ids: Sequence[str]) -> None: ...


def test_the_stand_in_has_every_member_of_processing() -> None:
    members = set(Processing.__annotations__) | {n for n in vars(Processing) if n[0] != "_"}
    assert members - set(dir(StuckProcessing)) == set()


def test_waits_then_refuses_with_503_when_processing_stays_behind() -> None:
    p, _ = memory_engine(collect={"max_processing_lag": 10, "backpressure_timeout_s": 0.05})
    p.processor = StuckProcessing(lag=11)
    with pytest.raises(Unavailable, match="11 messages behind"):
        asyncio.run(p.wait_for_capacity())
    with TestClient(create_app(p, own_engine=False)) as client:
        resp = client.post(
            "/v1/batch",
            content=orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "E"}]}),
            headers=AUTH,
        )
    assert resp.status_code == 503
    assert "retry" in resp.json()["hint"]
    assert p.stores.log.count() == 0  # refused before anything was accepted


def test_accepts_at_once_when_processing_keeps_up() -> None:
    p, _ = memory_engine(collect={"max_processing_lag": 10})
    p.processor = StuckProcessing(lag=10)
    asyncio.run(p.wait_for_capacity())  # returns without waiting


def test_requests_admitted_together_count_each_others_messages() -> None:
    p, _ = memory_engine(collect={"max_processing_lag": 1000, "backpressure_timeout_s": 0.05})
    p.processor = StuckProcessing(lag=600)  # under the limit on its own

    async def two_batches() -> None:
        async with p.admitted(500):  # 600 waiting + 500 being stored: the next must wait
            with pytest.raises(Unavailable, match="1100 messages behind"):
                async with p.admitted(500):
                    pass
        async with p.admitted(500):  # once the first is stored, there is room again
            pass

    asyncio.run(two_batches())
