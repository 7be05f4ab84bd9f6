"""Consent is enforced where data is used: decisions without ``personalization`` get only
the non-personalized answer, and say why."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import decide_key, memory_engine

from personify.api.app import create_app
from personify.decide import DEMO_WORKSPACE
from personify.decide.service import Decider
from personify.facade import Personify
from personify.workspace import apply

ADMIN = {"Authorization": "Bearer admin"}


@pytest.fixture
def engine() -> Iterator[Personify]:
    p, _ = memory_engine()
    for user in ("us-buyer", "us-refuser"):
        p.identify(user_id=user, traits={"country": "US", "first_name": "Ada"})
        for _ in range(4):
            p.track(user_id=user, event="Order Completed", properties={"revenue": 90})
    p.track(user_id="us-refuser", event="Consent Updated", properties={"personalization": False})
    p.drain()
    yield p
    p.close()


@pytest.fixture
def client(engine: Personify) -> Iterator[TestClient]:
    decider = Decider(engine, poll_interval=0.0)
    apply(DEMO_WORKSPACE, decider.store, actor="test")
    app = create_app(engine, own_engine=False)
    app.state.decider = decider
    with TestClient(app) as c:
        yield c
    decider.close()


def _hero(client: TestClient, **who: str) -> dict[str, object]:
    body = {**who, "context": {"channel": "web", "page": "/"}, "placements": ["home_hero"]}
    key = decide_key(client.app.state.personify)
    res = client.post("/v1/decide", content=orjson.dumps(body), headers=key)
    assert res.status_code == 200, res.text
    return dict(res.json()["decisions"][0])


def test_without_personalization_consent_only_the_anonymous_answer_is_served(
    client: TestClient,
) -> None:
    stranger = _hero(client, anonymousId="never-seen-before")
    refuser = _hero(client, userId="us-refuser")
    allowed = _hero(client, userId="us-buyer")
    # the two customers have the same history: only consent tells them apart
    assert allowed["content"] != stranger["content"]
    assert refuser["content"] == stranger["content"]
    reasons = refuser["reasons"]
    assert isinstance(reasons, list) and reasons[0]["type"] == "consent"
    assert "personalization" in reasons[0]["message"]
    assert all(r["type"] != "consent" for r in allowed["reasons"])  # type: ignore[union-attr]
