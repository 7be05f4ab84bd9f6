"""End to end over HTTP: on the demo workspace, one placement shows each persona the right thing.

The demo storefront is generated and processed like real traffic, the demo workspace is
applied, and ``POST /v1/decide`` is asked about a new visitor, a cart abandoner, a loyal
customer and a lapsing customer. A click and an order carrying the ``decision_id`` then come
back through ``POST /v1/track`` and show up in the per-content report.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import decide_key

from personify.api.app import create_app
from personify.clock import FixedClock
from personify.config import Settings
from personify.decide import DEMO_WORKSPACE
from personify.decide.service import Decider
from personify.demo import StorefrontSpec, generate, personas
from personify.facade import Personify
from personify.platform import build
from personify.workspace import apply

pytestmark = [pytest.mark.slow]
WRITE = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}
ADMIN = {"Authorization": "Bearer admin"}
SPEC = StorefrontSpec(customers=120, days=90, seed=7)


@pytest.fixture(scope="module")
def engine() -> Iterator[Personify]:
    settings = Settings(
        state_backend="memory",
        event_store_backend="memory",
        bus_backend="memory",
        write_keys="wk=web",
        admin_key="admin",
    )
    p = build(settings, FixedClock(SPEC.end))  # "now" is the end of the generated period
    p.ingest(generate(SPEC), "demo")
    p.drain()
    yield p
    p.close()


@pytest.fixture(scope="module")
def client(engine: Personify) -> Iterator[tuple[TestClient, Decider]]:
    decider = Decider(engine, poll_interval=0.0)
    apply(DEMO_WORKSPACE, decider.store, actor="e2e")
    app = create_app(engine, own_engine=False)
    app.state.decider = decider
    with TestClient(app) as c:
        yield c, decider
    decider.close()


def someone(persona: str) -> str:
    return next(uid for uid, p in sorted(personas(SPEC).items()) if p == persona)


def hero(client: TestClient, **identity: str) -> dict[str, Any]:
    body = {**identity, "context": {"channel": "web", "page": "/"}, "placements": ["home_hero"]}
    key = decide_key(client.app.state.personify)  # the site's server asks, not the browser
    answer = client.post("/v1/decide", content=orjson.dumps(body), headers=key)
    assert answer.status_code == 200, answer.text
    [decision] = answer.json()["decisions"]
    return dict(decision)


@pytest.mark.parametrize(
    ("identity", "content", "why"),
    [
        ({"anonymousId": "first-visit-0001"}, "welcome_banner", "no rule decided"),
        ({"userId": someone("cart_abandoner")}, "cart_reminder", "rule 'cart_abandoner' matched"),
        ({"userId": someone("loyal_buyer")}, "loyalty_picks", "rule 'loyal_customer' matched"),
        ({"userId": someone("lapsing_customer")}, "winback_offer", "rule 'lapsing_customer'"),
    ],
)
def test_each_persona_sees_its_content_with_the_reason(
    client: tuple[TestClient, Decider], identity: dict[str, str], content: str, why: str
) -> None:
    decision = hero(client[0], **identity)
    assert decision["content"]["key"] == content
    assert any(why in reason["message"] for reason in decision["reasons"]), decision["reasons"]
    assert decision["decision_id"].startswith("d_")
    assert decision["content"]["fields"]["headline"]


def test_the_personas_see_four_different_things(client: tuple[TestClient, Decider]) -> None:
    seen = {
        hero(client[0], anonymousId="first-visit-0002")["content"]["key"],
        hero(client[0], userId=someone("cart_abandoner"))["content"]["key"],
        hero(client[0], userId=someone("loyal_buyer"))["content"]["key"],
        hero(client[0], userId=someone("lapsing_customer"))["content"]["key"],
    }
    assert len(seen) == 4


def test_templates_are_personalized(client: tuple[TestClient, Decider], engine: Personify) -> None:
    uid = someone("loyal_buyer")
    profile = engine.profile_by("user_id", uid)
    name = profile["traits"]["first_name"]["value"]
    orders = profile["computed"]["orders"]
    fields = hero(client[0], userId=uid)["content"]["fields"]
    assert fields["headline"] == f"Thanks for {orders} orders, {name}!"


def test_a_click_and_an_order_with_the_decision_id_reach_the_report(
    client: tuple[TestClient, Decider], engine: Personify
) -> None:
    http, _ = client
    uid = someone("lapsing_customer")
    decision = hero(http, userId=uid)
    assert decision["content"]["key"] == "winback_offer"
    did = decision["decision_id"]
    for event, extra in (
        ("Content Clicked", {}),
        ("Order Completed", {"order_id": "e2e-1", "revenue": 64.0}),
    ):
        message = {"userId": uid, "event": event, "properties": {"decision_id": did, **extra}}
        sent = http.post("/v1/track", content=orjson.dumps(message), headers=WRITE)
        assert sent.status_code == 200, sent.text
    engine.drain()
    report = http.get("/v1/decide/report?placement=home_hero", headers=ADMIN).json()["content"]
    row = next(r for r in report if r["content"] == "winback_offer")
    assert (row["clicks"], row["conversions"], row["revenue"]) == (1, 1, 64.0)
    assert row["impressions"] >= 1
