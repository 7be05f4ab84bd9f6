"""Erasure against a real ``personify serve``: events are deleted by the worker process.

Under ``serve`` the DuckDB event store belongs to the processing worker, so the API process
asks it (over the worker socket) to delete the person's events. After the server stops,
no file of the data directory holds the person's identifiers, and a late event is dropped.
"""

from __future__ import annotations

import time

import httpx2 as httpx
import pytest
from tests.e2e.conftest import WRITE_KEY, Server
from tests.e2e.test_privacy_erasure import search

pytestmark = [pytest.mark.slow]
ANON, USER, EMAIL = "anon-srv-k2p9", "user-srv-k2p9", "srv.k2p9@example.com"


def test_erase_under_serve_runs_the_event_deletion_in_the_worker(server: Server) -> None:
    batch = {
        "batch": [
            {"type": "page", "anonymousId": ANON, "name": "Home"},
            {"type": "alias", "userId": USER, "previousId": ANON},
            {"type": "identify", "userId": USER, "traits": {"email": EMAIL}},
            {"type": "track", "userId": USER, "event": "Order Completed"},
            {"type": "track", "userId": "srv-keeper", "event": "Order Completed"},
        ]
    }
    sent = httpx.post(f"{server.url}/v1/batch", json=batch, auth=(WRITE_KEY, ""))
    assert sent.json()["accepted"] == 5
    assert server.wait_caught_up()["events"] == 5
    erased = httpx.post(
        f"{server.url}/v1/privacy/erase", json={"email": EMAIL}, headers=server.admin(), timeout=60
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["summary"]["events"] == 4
    late = httpx.post(
        f"{server.url}/v1/track", json={"userId": USER, "event": "Late"}, auth=(WRITE_KEY, "")
    )
    assert late.json()["accepted"] == 0
    time.sleep(0.2)
    assert server.wait_caught_up()["events"] == 1
    server.stop()
    for needle in (ANON, USER, EMAIL):
        assert search(server.data_dir, needle) == [], needle
    assert search(server.data_dir, "srv-keeper")


def test_delete_only_under_serve_does_not_bring_the_profile_back(server: Server) -> None:
    """DELETE_ONLY lets the person's later events in: the worker, which holds recent
    profiles in memory, must start a new profile instead of writing the erased one back."""
    user, email = "user-del-7q4m", "del.7q4m@example.com"
    batch = {
        "batch": [
            {"type": "identify", "userId": user, "traits": {"email": email, "plan": "pro"}},
            {"type": "track", "userId": user, "event": "Order Completed"},
        ]
    }
    sent = httpx.post(f"{server.url}/v1/batch", json=batch, auth=(WRITE_KEY, ""))
    assert sent.json()["accepted"] == 2
    server.wait_caught_up()
    headers = server.admin()
    before = httpx.get(
        f"{server.url}/v1/profiles/lookup", params={"user_id": user}, headers=headers
    ).json()
    regulation = {"regulationType": "DELETE_ONLY", "subjectType": "USER_ID", "subjectIds": [user]}
    done = httpx.post(f"{server.url}/v1/regulations", json=regulation, headers=headers, timeout=60)
    assert done.status_code == 200, done.text
    assert done.json()["jobs"][0]["status"] == "completed"
    late = httpx.post(
        f"{server.url}/v1/track", json={"userId": user, "event": "Back"}, auth=(WRITE_KEY, "")
    )
    assert late.json()["accepted"] == 1  # not suppressed
    server.wait_caught_up()
    after = httpx.get(
        f"{server.url}/v1/profiles/lookup", params={"user_id": user}, headers=headers
    ).json()
    assert after["profile_id"] != before["profile_id"]
    assert after["traits"] == {} and after["identities"]["email"] == []
    gone = httpx.get(f"{server.url}/v1/profiles/{before['profile_id']}", headers=headers)
    assert gone.status_code == 404
    server.stop()
    assert search(server.data_dir, email) == []
