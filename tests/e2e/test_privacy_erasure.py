"""End to end: a person known under several identities is erased from every store.

On the embedded backends (SQLite state, DuckDB events, SQLite log), one person arrives as an
anonymous visitor, is aliased to a user id, identifies with an email and a phone number,
orders, enters a segment, gets a model score and a decision. After ``POST
/v1/privacy/erase``, every table of every SQLite and DuckDB file in the data directory is
searched for their identifiers (and the raw bytes of every file too), and a late event for
them is dropped. Another customer stays intact, which proves the search would find data.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from fastapi.testclient import TestClient

from personify.api.app import create_app
from personify.config import Settings
from personify.decide import DEMO_WORKSPACE
from personify.decide.request import parse_request
from personify.decide.service import Decider
from personify.facade import Personify
from personify.platform import build
from personify.workspace import apply

pytestmark = [pytest.mark.slow]
WRITE = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}
ADMIN = {"Authorization": "Bearer admin"}
ANON, USER = "anon-zq81x7", "user-zq81x7"
EMAIL, PHONE = "zoe.quill81@example.com", "+1 415 555 2671"
# what the person is stored as: normalized email and E.164 phone, and the raw forms
SECRETS = (ANON, USER, EMAIL, "+14155552671", "zoe.quill81")
KEEP = "keep.me.42@example.com"


def send(client: TestClient, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    res = client.post(f"/v1/{kind}", content=orjson.dumps(body), headers=WRITE)
    assert res.status_code == 200, res.text
    return dict(res.json())


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(params=[False, True], ids=["plain", "encrypted-pii"])
def engine(data_dir: Path, request: pytest.FixtureRequest) -> Iterator[Personify]:
    settings = Settings(
        data_dir=data_dir,
        write_keys="wk=web",
        admin_key="admin",
        privacy={"encrypt_pii": request.param},
    )
    p = build(settings)
    yield p
    p.close()


def _ingest_person(client: TestClient) -> None:
    send(client, "page", {"anonymousId": ANON, "name": "Home", "messageId": "m-1"})
    send(client, "track", {"anonymousId": ANON, "event": "Product Viewed", "messageId": "m-2"})
    send(client, "alias", {"userId": USER, "previousId": ANON, "messageId": "m-3"})
    send(
        client,
        "identify",
        {
            "userId": USER,
            "traits": {"email": EMAIL.upper(), "phone": PHONE, "name": "Zoe Quill"},
            "messageId": "m-4",
        },
    )
    send(
        client,
        "track",
        {
            "userId": USER,
            "event": "Order Completed",
            "properties": {"revenue": 42, "email": EMAIL},
            "messageId": "m-5",
        },
    )
    send(client, "identify", {"userId": "keeper", "traits": {"email": KEEP}, "messageId": "k-1"})
    send(client, "track", {"userId": "keeper", "event": "Order Completed", "messageId": "k-2"})
    # a malformed message naming the person lands in quarantine
    res = client.post(
        "/v1/batch",
        content=orjson.dumps({"batch": [{"type": "track", "userId": USER}]}),
        headers=WRITE,
    )
    assert res.json()["quarantined"], res.text


def _derive(client: TestClient, p: Personify) -> str:
    p.drain()
    pid = p.lookup("email", EMAIL)
    assert p.lookup("anonymous_id", ANON) == pid
    segment = {"key": "buyers", "name": "Buyers", "condition": {"computed.orders": {"$gte": 1}}}
    assert client.post("/v1/segments", json=segment, headers=ADMIN).status_code == 201
    assert client.post("/v1/segments/rebuild", json={}, headers=ADMIN).status_code == 200
    assert "buyers" in p.profile(pid)["segments"]
    p.stores.scores.put("churn", 1, {pid: 0.7, p.lookup("user_id", "keeper"): 0.2}, "2026-01-01")
    decider = Decider(p, poll_interval=0.0)
    apply(DEMO_WORKSPACE, decider.store, actor="e2e")
    for user in (USER, "keeper"):
        decider.decide_request(parse_request({"userId": user, "placements": ["home_hero"]}))
    decider.close()
    p.stores.decisions.flush()
    return pid


def sqlite_hits(path: Path, needle: str) -> list[str]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    hits = []
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
            for col in cols:
                n = con.execute(
                    f'SELECT COUNT(*) FROM "{table}" WHERE instr(lower(CAST("{col}" AS TEXT)), ?)',
                    (needle.lower(),),
                ).fetchone()[0]
                if n:
                    hits.append(f"{path.name}:{table}.{col}")
    finally:
        con.close()
    return hits


def duckdb_hits(path: Path, needle: str) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    hits = []
    try:
        tables = [r[0] for r in con.execute("SHOW TABLES").fetchall()]
        for table in tables:
            for col in [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()]:
                row = con.execute(
                    f'SELECT COUNT(*) FROM "{table}" WHERE contains(lower("{col}"::VARCHAR), ?)',
                    [needle.lower()],
                ).fetchone()
                if row and row[0]:
                    hits.append(f"{path.name}:{table}.{col}")
    finally:
        con.close()
    return hits


def search(data_dir: Path, needle: str) -> list[str]:
    """Every table column (SQL) and every file's raw bytes that contain ``needle``."""
    hits: list[str] = []
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".sqlite":
            hits += sqlite_hits(path, needle)
        elif path.suffix == ".duckdb":
            hits += duckdb_hits(path, needle)
        if needle.lower().encode() in path.read_bytes().lower():
            hits.append(f"{path.name}:bytes")
    return hits


def test_erasure_leaves_no_identifier_in_any_store(engine: Personify, data_dir: Path) -> None:
    with TestClient(create_app(engine, own_engine=False)) as client:
        _ingest_person(client)
        pid = _derive(client, engine)
        exported = client.post("/v1/privacy/export", json={"anonymousId": ANON}, headers=ADMIN)
        result = exported.json()["result"]
        assert result["profile"]["profile_id"] == pid
        assert {e["event"] for e in result["events"] if e["event"]} >= {"Order Completed"}
        assert result["segment_memberships"] and result["scores"] and result["decisions"]

        res = client.post("/v1/privacy/erase", json={"email": EMAIL}, headers=ADMIN)
        assert res.status_code == 200, res.text
        job = res.json()
        assert job["status"] == "completed"
        assert job["summary"]["events"] == 5 and job["summary"]["quarantined"] == 1
        assert client.get(f"/v1/privacy/jobs/{job['job_id']}", headers=ADMIN).json()["status"] == (
            "completed"
        )
        # a late event under any of their identities is dropped, and counted
        late = send(client, "track", {"anonymousId": ANON, "event": "Late", "messageId": "m-9"})
        assert late["accepted"] == 0 and engine.collector.suppressed == 1
        send(client, "identify", {"userId": "new-id", "traits": {"email": EMAIL}})
        assert engine.collector.suppressed == 2
        lookup = client.get("/v1/profiles/lookup", params={"email": EMAIL}, headers=ADMIN)
        assert lookup.status_code == 404
        again = client.post("/v1/privacy/export", json={"userId": USER}, headers=ADMIN)
        assert again.json()["result"]["found"] is False
    engine.close()

    for needle in SECRETS:
        assert search(data_dir, needle) == [], needle
    # the other customer is still there, so the search does find what is stored
    kept = search(data_dir, "keeper")
    assert any("events.duckdb" in h for h in kept) and any("state.sqlite" in h for h in kept)
    # with encrypt_pii, every store holds the other customer's email only sealed
    plain_email = search(data_dir, KEEP)
    if engine.settings.privacy.encrypt_pii:
        assert plain_email == []
    else:
        assert any("events.duckdb" in h for h in plain_email)
        assert any("state.sqlite" in h for h in plain_email)
