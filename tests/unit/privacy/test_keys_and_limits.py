"""API keys are stored hashed and checked by role; public endpoints are rate limited."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine

from personify.api.app import create_app
from personify.errors import InvalidInput, NotFound
from personify.privacy.keys import ApiKeyStore
from personify.privacy.ratelimit import RateLimiter

ADMIN = {"Authorization": "Bearer admin"}
WRITE = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}


def test_the_key_file_holds_only_a_hash_of_the_token(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.sqlite")
    created = store.create("marketer", "campaign team")
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    # pk_<key id>_<secret>; the secret is URL-safe base64, which may itself contain "_"
    secret_part = created.token.split("_", 2)[2]
    assert len(secret_part) >= 40
    assert secret_part.encode() not in raw
    store = ApiKeyStore(tmp_path / "keys.sqlite")
    assert store.verify(created.token) is not None  # survives a restart
    assert store.verify(created.token + "x") is None
    assert store.verify("not-a-key") is None
    store.close()


def test_bad_roles_names_and_ids_are_explained() -> None:
    store = ApiKeyStore(None)
    with pytest.raises(InvalidInput) as bad_role:
        store.create("root", "x")
    assert bad_role.value.problems[0].field == "role"
    with pytest.raises(InvalidInput):
        store.create("analyst", "  ")
    with pytest.raises(NotFound):
        store.revoke("nope")


def test_keys_over_http_create_list_revoke_and_validate() -> None:
    p, _ = memory_engine()
    with TestClient(create_app(p)) as client:
        res = client.post("/v1/keys", json={"role": "decide", "name": "web app"}, headers=ADMIN)
        assert res.status_code == 201
        token, key_id = res.json()["token"], res.json()["key_id"]
        listed = client.get("/v1/keys", headers=ADMIN).json()["keys"]
        assert [k["key_id"] for k in listed] == [key_id] and "token" not in listed[0]
        bad = client.post("/v1/keys", json={"role": "boss"}, headers=ADMIN)
        assert bad.status_code == 400
        assert {p["field"] for p in bad.json()["problems"]} == {"name"}
        decide_key = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/keys", headers=decide_key).status_code == 403
        assert client.delete(f"/v1/keys/{key_id}", headers=ADMIN).status_code == 200
        assert client.get("/v1/keys?include_revoked=true", headers=ADMIN).json()["keys"][0][
            "revoked_at"
        ]
        assert client.get("/v1/stats", headers=decide_key).status_code == 401


def test_token_bucket_refills_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, now=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # buckets are per key
    now[0] = 0.5
    assert limiter.take("a") == 0.0
    with pytest.raises(ValueError, match="rate must be positive"):
        RateLimiter(rate=0, burst=1)


def test_public_endpoints_answer_429_per_key_but_admin_routes_do_not() -> None:
    p, _ = memory_engine(privacy={"rate_per_second": 0.001, "rate_burst": 2})
    with TestClient(create_app(p)) as client:
        codes = [
            client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=WRITE).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        limited = client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=WRITE)
        assert limited.json()["error"] == "rate_limited" and int(limited.headers["retry-after"])
        other = {"Authorization": "Basic " + base64.b64encode(b"other:").decode()}
        assert client.post("/v1/track", json={}, headers=other).status_code == 401  # own bucket
        assert all(client.get("/v1/stats", headers=ADMIN).status_code == 200 for _ in range(5))
