"""PII key rotation against a real ``personify serve``: a background job that re-seals the
profiles and events in the worker and the log and quarantine in the API process, while
the server keeps collecting and answering; then the old key is retired, and after a
restart every store still reads back while no file holds a value sealed with that key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from tests.e2e.conftest import WRITE_KEY, Server, free_port
from tests.e2e.test_privacy_erasure import search

pytestmark = [pytest.mark.slow]
EMAIL, PHONE, NAME = "rot.k7w@example.com", "+14155550142", "Rota Keyes"


def _send(server: Server, batch: list[dict[str, Any]]) -> dict[str, Any]:
    res = httpx.post(f"{server.url}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""))
    assert res.status_code == 200, res.text
    return dict(res.json())


def _reads(server: Server) -> dict[str, Any]:
    admin = server.admin()
    profile = httpx.get(
        f"{server.url}/v1/profiles/lookup", params={"email": EMAIL}, headers=admin, timeout=30
    ).json()
    events = httpx.get(
        f"{server.url}/v1/profiles/{profile['profile_id']}/events", headers=admin, timeout=30
    ).json()["events"]
    items = httpx.get(f"{server.url}/v1/quarantine", headers=admin, timeout=30).json()["items"]
    return {
        "traits": {k: v["value"] for k, v in profile["traits"].items()},
        "events": sorted((e["message_id"], orjson.dumps(e["properties"])) for e in events),
        "quarantine": [i["payload"] for i in items],
    }


def test_rotation_under_serve_reseals_every_store_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSONIFY_PRIVACY__ENCRYPT_PII", "true")
    server = Server(tmp_path / "data", free_port())
    server.start()
    try:
        sent = _send(
            server,
            [
                {"type": "identify", "userId": "u-rot", "traits": {"email": EMAIL, "name": NAME}},
                *(
                    {
                        "type": "track",
                        "userId": "u-rot",
                        "event": "Viewed",
                        "properties": {"email": EMAIL, "n": i},
                    }
                    for i in range(200)
                ),
                {"type": "identify", "traits": {"email": EMAIL, "phone": PHONE}},  # quarantined
            ],
        )
        assert sent["accepted"] == 201 and len(sent["quarantined"]) == 1
        assert server.wait_caught_up()["events"] == 201
        old = orjson.loads((server.data_dir / "pii.keys").read_bytes())["current"]

        res = httpx.post(
            f"{server.url}/v1/privacy/keys/rotate",
            json={"retire": True},
            headers=server.admin(),
            timeout=30,
        )
        assert res.status_code == 202, res.text
        job_id = res.json()["job_id"]
        assert res.json()["status"] in ("running", "completed")
        # the server keeps collecting and answering while the job runs
        late = {"type": "identify", "userId": "u-rot", "traits": {"phone": PHONE}}
        assert _send(server, [late])["accepted"] == 1
        deadline = time.monotonic() + 120
        while True:
            job = httpx.get(
                f"{server.url}/v1/privacy/jobs/{job_id}", headers=server.admin(), timeout=30
            ).json()
            if job["status"] != "running" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert job["status"] == "completed", job
        summary = job["summary"]
        assert summary["retired"] == 1 and summary["key"] != old
        assert summary["resealed"]["profiles"] == 1 and summary["resealed"]["quarantine"] == 1
        assert summary["resealed"]["events"] >= 201 and summary["resealed"]["log"] >= 201
        assert summary["check"]["resealed"] == dict.fromkeys(summary["resealed"], 0)
        assert list(orjson.loads((server.data_dir / "pii.keys").read_bytes())["keys"]) == [
            summary["key"]
        ]
        # both processes seal with the new key alone from now on
        after = {
            "type": "track",
            "userId": "u-rot",
            "event": "After",
            "properties": {"email": EMAIL},
        }
        assert _send(server, [after])["accepted"] == 1
        assert server.wait_caught_up()["events"] == 203
        reads = _reads(server)
        assert reads["traits"]["email"] == EMAIL and reads["traits"]["phone"] == PHONE
        assert reads["traits"]["name"] == NAME
        assert len(reads["events"]) == 100  # the timeline's default page, all opened
        assert reads["quarantine"] == [
            {"type": "identify", "traits": {"email": EMAIL, "phone": PHONE}}
        ]
        audit = httpx.get(
            f"{server.url}/v1/audit", params={"action": "privacy.rotate"}, headers=server.admin()
        ).json()["records"]
        assert [r["detail"]["job_id"] for r in audit] == [job_id]
    finally:
        server.stop()
    assert search(server.data_dir, f"enc:1:{old}:") == []
    for needle in (EMAIL, PHONE, NAME):
        assert search(server.data_dir, needle) == [], needle
    server.start()  # a restart reads everything with the one remaining key
    try:
        assert _reads(server) == reads
    finally:
        server.stop()
