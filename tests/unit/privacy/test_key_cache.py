"""Verified API keys are kept in memory, and a revoked key still stops working at once,
wherever it was revoked: this store, another store on the same file, or the CLI in another
process while the server runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine

from personify.api.app import create_app
from personify.privacy.keys import ApiKeyStore


def test_a_verified_key_is_kept_by_digest_not_by_token(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.sqlite")
    created = store.create("decide", "web app")
    assert store.verify(created.token) == created.key
    assert store.verify(created.token) == created.key
    cached = store._verified  # the cache itself is what is checked here
    assert len(cached) == 1 and created.token not in cached
    secret = created.token.split("_", 2)[2]  # pk_<id>_<secret>; the secret may hold "_"
    assert secret not in "".join(cached)
    store.close()


def test_revoking_through_the_same_store_works_at_once() -> None:
    store = ApiKeyStore(None)
    created = store.create("decide", "web app")
    assert store.verify(created.token) is not None
    store.revoke(created.key.key_id)
    assert store.verify(created.token) is None


def test_revoking_through_another_connection_works_at_once(tmp_path: Path) -> None:
    server = ApiKeyStore(tmp_path / "keys.sqlite")
    created = server.create("analyst", "notebook")
    assert server.verify(created.token) is not None
    other = ApiKeyStore(tmp_path / "keys.sqlite")
    other.revoke(created.key.key_id)
    assert server.verify(created.token) is None
    other.close()
    server.close()


def test_revoking_with_the_cli_while_the_server_runs_works_at_once(tmp_path: Path) -> None:
    server = ApiKeyStore(tmp_path / "keys.sqlite")
    created = server.create("decide", "web app")
    assert server.verify(created.token) is not None
    env = {**os.environ, "PERSONIFY_DATA_DIR": str(tmp_path)}
    subprocess.run(
        [sys.executable, "-m", "personify.cli", "keys", "revoke", created.key.key_id],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert server.verify(created.token) is None
    server.close()


def test_a_key_created_elsewhere_works_at_once(tmp_path: Path) -> None:
    server = ApiKeyStore(tmp_path / "keys.sqlite")
    assert server.verify("pk_nope_nope") is None
    other = ApiKeyStore(tmp_path / "keys.sqlite")
    created = other.create("decide", "new app")
    assert server.verify(created.token) == created.key
    other.close()
    server.close()


def test_a_revoked_decide_key_is_refused_by_the_decision_api_at_once() -> None:
    p, _ = memory_engine()
    admin = {"Authorization": "Bearer admin"}
    with TestClient(create_app(p)) as client:
        made = client.post("/v1/keys", json={"role": "decide", "name": "app"}, headers=admin)
        key = {"Authorization": f"Bearer {made.json()['token']}"}
        body = {"anonymousId": "a-1", "placements": ["nowhere"]}
        assert client.post("/v1/decide", json=body, headers=key).status_code == 400  # let in
        assert client.post("/v1/decide", json=body, headers=key).status_code == 400
        assert client.delete(f"/v1/keys/{made.json()['key_id']}", headers=admin).status_code == 200
        assert client.post("/v1/decide", json=body, headers=key).status_code == 401
