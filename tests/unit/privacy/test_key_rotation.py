"""PII key rotation re-seals every store (profiles, log, events, quarantine), so the old keys
can be retired and everything still reads back, also through a rebuild from the log."""

from __future__ import annotations

import fcntl
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.e2e.test_privacy_erasure import search
from tests.unit.helpers import memory_engine
from tests.unit.privacy.test_pii_encryption import EMAIL, NAME, PHONE, PLAIN, _ingest, _settings

from personify.api.app import create_app
from personify.errors import Conflict, InvalidInput
from personify.facade import Personify
from personify.platform import build
from personify.privacy.pii import load_keyring
from personify.privacy.rotation import ciphers, rotate, run_rotation

ADMIN = {"Authorization": "Bearer admin"}


def _reads(p: Personify) -> dict[str, Any]:
    """What every store gives back for the person `_ingest` wrote (opened values)."""
    pid = p.lookup("email", EMAIL)
    view = p.profile(pid)
    return {
        "traits": {k: v["value"] for k, v in view["traits"].items()},
        "identities": view["identities"],
        "timeline": [
            (e["message_id"], e["traits"], e["properties"], e["context"]) for e in p.timeline(pid)
        ],
        "quarantine": [i["payload"] for i in p.quarantined()],
    }


def _raw(data: Path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(data.rglob("*")) if f.is_file())


def test_rotation_reseals_every_store_so_old_keys_can_be_retired(tmp_path: Path) -> None:
    data = tmp_path / "d"
    settings = _settings(data)
    _ingest(settings)
    old = load_keyring(None, data).current
    assert f"enc:1:{old}:".encode() in _raw(data)
    with build(settings) as p:
        before = _reads(p)
        messages, events = p.stores.log.count(), p.stores.events.count()
        job = run_rotation(p, "test", retire=True)
        assert job["status"] == "completed" and job["kind"] == "rotate"
        summary = job["summary"]
        assert summary["examined"] == {
            "profiles": 2,  # the live profile and the one merged into it
            "events": events,
            "log": messages,
            "quarantine": 1,
        }
        # every message but the anonymous page view holds sealed values
        assert summary["resealed"] == {**summary["examined"], "events": 3, "log": 3}
        assert events == messages == 4
        assert summary["check"]["resealed"] == dict.fromkeys(summary["resealed"], 0)
        assert summary["retired"] == 1
        assert _reads(p) == before  # this process switched keys and still reads everything
        assert p.privacy is not None
        [record] = p.privacy.audit.query(action="privacy.rotate")
        assert record["detail"]["key"] == summary["key"] != old
    ring = load_keyring(None, data)
    assert list(ring.keys) == [summary["key"]]
    # no file holds a value sealed with the retired key, nor even its id; no PII either
    raw = _raw(data)
    assert old.encode() not in raw and f"enc:1:{summary['key']}:".encode() in raw
    assert not [s for s in PLAIN if s.lower() in raw.lower()]
    assert search(data, f"enc:1:{old}:") == []
    with build(settings) as p:  # a restart reads every store with the new key alone
        assert _reads(p) == before
        assert before["traits"]["phone"] == PHONE and before["traits"]["name"] == NAME
        assert {e[2].get("email") for e in before["timeline"] if e[2]} == {EMAIL}
    # the log alone, replayed by a fresh processor, rebuilds the same profiles and events
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("log.sqlite", "pii.keys", "privacy.key"):
        shutil.copy(data / name, fresh / name)
    with build(_settings(fresh)) as p:
        p.drain()
        rebuilt = _reads(p)
    assert {k: v for k, v in rebuilt.items() if k != "quarantine"} == {
        k: v for k, v in before.items() if k != "quarantine"
    }


def test_a_rotation_can_be_resumed_and_leaves_current_values_alone(tmp_path: Path) -> None:
    data = tmp_path / "d"
    settings = _settings(data)
    _ingest(settings)
    old = load_keyring(None, data).current
    with build(settings) as p:
        before = _reads(p)
        first = run_rotation(p, "test")["summary"]
        assert first["resealed"]["log"] > 0 and "retired" not in first
        again = run_rotation(p, "test", resume=True)["summary"]
        assert again["key"] == first["key"]  # resume adds no key
        assert again["resealed"] == dict.fromkeys(first["resealed"], 0)
        assert again["examined"] == first["examined"]
        p.identify(user_id="u-late", traits={"email": "late@example.com"})  # new key at once
        p.drain()
        assert p.profile_by("email", "late@example.com")["traits"]["email"]["value"]
    ring = load_keyring(None, data)
    assert set(ring.keys) == {old, first["key"]}  # without retire both keys stay
    assert f"enc:1:{old}:".encode() not in _raw(data)
    with build(settings) as p:
        assert _reads(p) == before


def test_rotation_on_memory_backends_switches_the_in_memory_keyring() -> None:
    p, _ = memory_engine(privacy={"encrypt_pii": True})
    with p:
        p.identify(user_id="u1", traits={"email": "ann@example.com", "name": "Ann"})
        p.ingest([{"type": "identify", "traits": {"email": "q@example.com"}}], "crm")
        p.drain()
        [cipher] = ciphers(p.stores)
        old = cipher.ring.current
        summary = rotate(p, retire=True)
        assert cipher.ring.current == summary["key"] != old and len(cipher.ring.keys) == 1
        assert summary["resealed"] == {"profiles": 1, "events": 1, "log": 1, "quarantine": 1}
        assert p.profile_by("user_id", "u1")["traits"]["name"]["value"] == "Ann"
        assert p.timeline(p.lookup("user_id", "u1"))[0]["traits"]["email"] == "ann@example.com"
        assert p.quarantined()[0]["payload"]["traits"] == {"email": "q@example.com"}


def test_rotation_needs_sealing_and_runs_one_at_a_time(tmp_path: Path) -> None:
    p, _ = memory_engine()
    with p, pytest.raises(InvalidInput, match="ENCRYPT_PII"):
        run_rotation(p, "test")
    settings = _settings(tmp_path / "d")
    with build(settings) as p:
        held = (tmp_path / "d" / "pii.keys.lock").open("w")
        fcntl.flock(held, fcntl.LOCK_EX)  # as another process rotating this data dir would
        try:
            with pytest.raises(Conflict, match="already running"):
                run_rotation(p, "test")
        finally:
            held.close()
        assert run_rotation(p, "test")["status"] == "completed"


def _wait(client: TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/v1/privacy/jobs/{job_id}", headers=ADMIN).json()
        if job["status"] != "running":
            return dict(job)
        time.sleep(0.05)
    raise TimeoutError(job_id)


def test_the_api_rotates_in_the_background_as_a_tracked_audited_job(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "d").model_copy(update={"admin_key": "admin"})
    _ingest(settings)
    with build(settings) as p, TestClient(create_app(p, own_engine=False)) as client:
        before = _reads(p)
        res = client.post("/v1/privacy/keys/rotate", json={"retire": True}, headers=ADMIN)
        assert res.status_code == 202, res.text
        assert set(res.json()) >= {"job_id", "status"} and res.json()["kind"] == "rotate"
        job = _wait(client, res.json()["job_id"])
        assert job["status"] == "completed", job
        assert job["summary"]["retired"] == 1 and job["summary"]["resealed"]["events"] > 0
        assert _reads(p) == before
        bad = client.post("/v1/privacy/keys/rotate", json={"retire": "yes", "x": 1}, headers=ADMIN)
        assert bad.status_code == 400
        assert {q["field"] for q in bad.json()["problems"]} == {"retire", "x"}
        assert p.privacy is not None
        audit = p.privacy.audit
        assert len(audit.query(action="POST /v1/privacy/keys/rotate")) == 2  # who asked
        [done] = audit.query(action="privacy.rotate")  # and what the job did
        assert done["actor"] == "admin-key" and done["detail"]["job_id"] == job["job_id"]
    assert list(load_keyring(None, tmp_path / "d").keys) == [job["summary"]["key"]]


def test_the_api_refuses_rotation_without_sealing() -> None:
    p, _ = memory_engine()
    with p, TestClient(create_app(p, own_engine=False)) as client:
        res = client.post("/v1/privacy/keys/rotate", headers=ADMIN)
        assert res.status_code == 400 and "ENCRYPT_PII" in res.json()["message"]
