"""``GET /v1/recommendations`` and similar items over an engine, with a registered model.

A new visitor, a visitor with three product views in this session and a long-time buyer
must each get sensible and different lists.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import T0, decide_key, memory_engine
from tests.unit.recs import storefront

from personify.api.app import create_app
from personify.errors import InvalidInput, NotFound
from personify.facade import Personify
from personify.models.registry import ModelRegistry
from personify.recs import publish
from personify.recs.serving import recommend_for, service_for

WRITE = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}
ADMIN = {"Authorization": "Bearer admin"}


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("recs-data")
    data = publish.from_rows(storefront.rows())
    trained = publish.train(data, validation_days=30)
    publish.register(ModelRegistry(data_dir / "models"), data, trained)
    return data_dir


@pytest.fixture
def engine(models_root: Path) -> Personify:
    return memory_engine(data_dir=models_root)[0]


@pytest.fixture
def client(engine: Personify) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


def get(client: TestClient, path: str, **params: Any) -> Any:
    """A request as a site's server makes it, with a key of role ``decide``."""
    engine: Personify = client.app.state.personify
    return client.get(path, params=params, headers=decide_key(engine))


def view(engine: Personify, anonymous_id: str, items: list[str]) -> None:
    for i, item in enumerate(items):
        engine.track(
            anonymous_id=anonymous_id,
            event="Product Viewed",
            properties=storefront.product(item),
            timestamp=T0.replace(minute=i).isoformat(),
        )
    engine.drain()


def test_new_visitor_long_time_buyer_and_session_visitor_differ(
    client: TestClient, engine: Personify
) -> None:
    new = get(client, "/v1/recommendations", k=4).json()
    assert new["strategy"] == "popular" and new["profile_id"] is None
    assert sorted(i["id"] for i in new["items"]) == ["t0", "t1", "t2", "t3"]  # toys sell most

    view(engine, "visitor-1", ["g1", "g2", "g3"])
    session = get(client, "/v1/recommendations", anonymous_id="visitor-1", k=5).json()
    assert session["strategy"] == "session"
    garden = [i for i in session["items"] if i["id"].startswith("g")]
    assert len(garden) >= 4, session["items"]

    engine.identify(user_id="mug-3", traits={"country": "UK"})
    engine.drain()
    buyer = get(client, "/v1/recommendations", user_id="mug-3", k=5).json()
    assert buyer["strategy"] == "personal"
    assert buyer["items"][0]["id"] == "m3"  # the favourite, bought four times
    assert buyer["items"][0]["reason"] == "bought before"
    assert sum(i["id"].startswith("m") for i in buyer["items"]) >= 4

    lists = [tuple(i["id"] for i in r["items"]) for r in (new, session, buyer)]
    assert len(set(lists)) == 3
    item = buyer["items"][0]
    assert set(item) == {"id", "title", "category", "price", "score", "reason"}
    assert item["title"] == "stoneware mug style 3" and item["category"] == "kitchen"


def test_unknown_identity_is_a_new_visitor(client: TestClient) -> None:
    body = get(client, "/v1/recommendations", anonymous_id="never-seen", k=3).json()
    assert body["strategy"] == "popular" and len(body["items"]) == 3


def test_email_placement_leaves_out_what_was_bought(client: TestClient, engine: Personify) -> None:
    engine.identify(user_id="garden-2")
    engine.drain()
    body = get(client, "/v1/recommendations", user_id="garden-2", k=5, placement="email").json()
    assert "g2" not in [i["id"] for i in body["items"]]
    assert len(body["items"]) == 5


def test_similar_items_for_a_product_page(client: TestClient) -> None:
    body = get(client, "/v1/recommendations/similar/g4", k=3).json()
    assert body["item_id"] == "g4" and body["strategy"] == "similar"
    assert all(i["id"].startswith("g") and i["id"] != "g4" for i in body["items"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"k": 0}, "query.k"),
        ({"k": 101}, "query.k"),
        ({"user_id": "mug-1", "anonymous_id": "a"}, "user_id"),
        ({"user_id": " "}, "user_id"),
        ({"placement": "sidebar"}, "placement"),
    ],
)
def test_bad_requests_name_the_problem(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    resp = get(client, "/v1/recommendations", **params)
    assert resp.status_code == 400, resp.text
    assert field in [p["field"] for p in resp.json()["problems"]]


def test_unknown_item_is_404(client: TestClient) -> None:
    resp = get(client, "/v1/recommendations/similar/nope")
    assert resp.status_code == 404 and resp.json()["hint"]


def test_a_decide_or_admin_key_is_required(client: TestClient, engine: Personify) -> None:
    assert client.get("/v1/recommendations").status_code == 401
    assert client.get("/v1/recommendations", headers=ADMIN).status_code == 200
    assert client.get("/v1/recommendations", headers=decide_key(engine)).status_code == 200
    assert engine.privacy is not None
    analyst = {"Authorization": f"Bearer {engine.privacy.keys.create('analyst', 'a').token}"}
    assert client.get("/v1/recommendations", headers=analyst).status_code == 403


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/recommendations", {}),
        ("/v1/recommendations", {"anonymous_id": "visitor-1"}),
        ("/v1/recommendations", {"user_id": "mug-1"}),
        ("/v1/recommendations/similar/g4", {}),
    ],
)
def test_a_write_key_only_collects_and_is_told_how_to_recommend(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    resp = client.get(path, params=params, headers=WRITE)
    assert resp.status_code == 403
    assert resp.json()["message"].startswith("write keys only collect events")
    assert "personify keys create --role decide" in resp.json()["hint"]
    assert "Authorization: Bearer <key>" in resp.json()["hint"]


def test_no_trained_model_is_a_404_with_a_hint(tmp_path: Path) -> None:
    engine = memory_engine(data_dir=tmp_path)[0]
    with TestClient(create_app(engine)) as c:
        resp = c.get("/v1/recommendations", headers=decide_key(engine))
    assert resp.status_code == 404
    assert "personify recs train" in resp.json()["hint"]


def test_recommend_for_fills_a_content_block(engine: Personify) -> None:
    engine.identify(user_id="mug-5")
    engine.drain()
    pid = engine.lookup("user_id", "mug-5")
    items = recommend_for(engine, pid, k=3, placement="home")
    assert len(items) == 3 and items[0]["id"] == "m5"
    assert recommend_for(engine, None, k=2)[0]["reason"] == "popular"
    with pytest.raises(NotFound):
        recommend_for(engine, "p_missing", k=2)
    with pytest.raises(InvalidInput):
        recommend_for(engine, pid, k=0)


def test_service_is_shared_per_engine_and_follows_promotions(
    engine: Personify, models_root: Path
) -> None:
    service = service_for(engine)
    assert service_for(engine) is service
    first = service.bundle()[1].version
    registry = ModelRegistry(models_root / "models")
    data = publish.from_rows(storefront.rows(seed=8))
    newer = publish.register(registry, data, publish.train(data, validation_days=30))
    service.refresh_s = 0.0
    assert service.bundle()[1].version == newer.version != first
    registry.rollback("recs")
    assert service.bundle()[1].version == first


def test_without_personalization_consent_only_popular_items_are_served(
    client: TestClient, engine: Personify
) -> None:
    engine.identify(user_id="mug-4", traits={"consent": {"personalization": False}})
    engine.drain()
    body = get(client, "/v1/recommendations", user_id="mug-4", k=4).json()
    assert body["strategy"] == "not_personalized"
    assert sorted(i["id"] for i in body["items"]) == ["t0", "t1", "t2", "t3"]
    assert {i["reason"] for i in body["items"]} == {"popular"}


def test_a_served_als_model_folds_in_session_views(tmp_path: Path) -> None:
    from personify.recs.data import build_interactions
    from personify.recs.factorization import ALS
    from personify.recs.hybrid import Hybrid
    from personify.recs.popularity import Popularity
    from personify.recs.training import TrainedHybrid

    data = publish.from_rows(storefront.rows())
    model = Hybrid(
        {"als": ALS(factors=8, iterations=10), "popular": Popularity()},
        {"als": 1.0, "popular": 0.1},
    )
    full = build_interactions(data.events, weights=data.weights, catalogue=data.catalogue)
    trained = TrainedHybrid(model.fit(full), None, 0.0)
    publish.register(ModelRegistry(tmp_path / "models"), data, trained)
    engine = memory_engine(data_dir=tmp_path)[0]
    view(engine, "visitor-als", ["g1", "g2", "g3"])
    pid = engine.lookup("anonymous_id", "visitor-als")
    items = recommend_for(engine, pid, k=3, placement="product")
    assert [i["id"][0] for i in items] == ["g", "g", "g"]
    assert items[0]["reason"] == "matches your taste"


def test_email_placement_fills_every_slot_when_the_top_items_were_bought(
    client: TestClient, engine: Personify
) -> None:
    # A buyer's best-scored items are mostly ones they bought; the email placement leaves
    # those out, so a first pool of k * 5 candidates can hold fewer than k that pass.
    users = [f"{taste}-{n}" for taste in ("mug", "garden") for n in range(10)]
    for user in users:
        engine.identify(user_id=user)
    engine.drain()
    short = []
    for user in users:
        for k in (1, 2, 3):
            body = get(client, "/v1/recommendations", user_id=user, k=k, placement="email").json()
            if len(body["items"]) != k:
                short.append((user, k, len(body["items"])))
    assert short == []


def test_a_large_k_is_served_not_refused_for_the_pool_behind_it(engine: Personify) -> None:
    # the pool asked of the model is several times k; k itself is what the caller checks
    service = service_for(engine)
    everything = service.similar("g4", k=500).items  # a pool of 2,500: was a 400 error
    assert everything and everything == service.similar("g4", k=100).items


def test_a_query_parameter_the_route_does_not_read_is_refused(client: TestClient) -> None:
    # userId is how events and /v1/decide spell it; ignored, it served a new visitor's list
    resp = get(client, "/v1/recommendations", userId="mug-3", k=3)
    assert resp.status_code == 400, resp.text
    [problem] = resp.json()["problems"]
    assert problem == {"field": "userId", "message": "not read here; did you mean user_id?"}
    similar = get(client, "/v1/recommendations/similar/g4", user_id="mug-3")
    assert similar.status_code == 400 and similar.json()["problems"][0]["field"] == "user_id"
