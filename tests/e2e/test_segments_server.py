"""Segments behind ``personify serve``: the worker keeps memberships, the API shows them."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import httpx2 as httpx
import pytest
from tests.e2e.conftest import WRITE_KEY, Server

pytestmark = pytest.mark.slow

VIEWERS = {
    "key": "sku9_viewers",
    "name": "Viewed sku-9 twice in a day",
    "condition": {
        "$event": {
            "name": "Product Viewed",
            "where": {"properties.sku": "sku-9"},
            "within": "1d",
            "count": {"$gte": 2},
        }
    },
}


def _segments_of(server: Server, user: str) -> list[str]:
    r = httpx.get(
        f"{server.url}/v1/profiles/lookup", params={"user_id": user}, headers=server.admin()
    )
    return list(r.json().get("segments", [])) if r.status_code == 200 else []


def _wait_for(check: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_membership_follows_events_and_dry_run_runs_in_the_worker(server: Server) -> None:
    admin = server.admin()
    created = httpx.post(f"{server.url}/v1/segments", json=VIEWERS, headers=admin)
    assert created.status_code == 201, created.text
    batch = {
        "batch": [
            {
                "type": "track",
                "userId": "e2e-fan",
                "event": "Product Viewed",
                "properties": {"sku": "sku-9"},
                "messageId": "view-1",
            },
            {
                "type": "track",
                "messageId": "view-2",  # (identical content would be one de-duplicated event)
                "userId": "e2e-fan",
                "event": "Product Viewed",
                "properties": {"sku": "sku-9"},
            },
            {
                "type": "track",
                "userId": "e2e-other",
                "event": "Product Viewed",
                "properties": {"sku": "sku-1"},
            },
        ]
    }
    sent = httpx.post(f"{server.url}/v1/batch", json=batch, auth=(WRITE_KEY, ""))
    assert sent.status_code == 200, sent.text
    assert _wait_for(lambda: _segments_of(server, "e2e-fan") == ["sku9_viewers"])
    assert _segments_of(server, "e2e-other") == []

    # A dry run needs the event history, which only the worker holds: it runs there.
    dry = httpx.post(
        f"{server.url}/v1/segments/dry-run",
        json={"condition": {"$event": {"name": "Product Viewed"}}},
        headers=admin,
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["count"] == 2
    bad = httpx.post(
        f"{server.url}/v1/segments/dry-run",
        json={"condition": {"$event": {"name": "Product Viewed", "within": "1 day"}}},
        headers=admin,
    )
    assert (
        bad.status_code == 400 and bad.json()["problems"][0]["field"] == "condition.$event.within"
    )

    # Members export and size are read by the API process from the segment store.
    csv_text = httpx.get(
        f"{server.url}/v1/segments/sku9_viewers/members", params={"format": "csv"}, headers=admin
    ).text
    assert csv_text.splitlines()[1].split(",")[2] == "e2e-fan"


def test_time_alone_moves_members_under_serve(server: Server) -> None:
    """The worker's segment scheduler: no event arrives, yet the abandoner enters."""
    admin = server.admin()
    body = {
        "key": "quick_abandoner",
        "name": "Added to cart, no order within 2 seconds",
        "condition": {
            "$sequence": {
                "first": {"name": "Product Added"},
                "notFollowedBy": {"name": "Order Completed"},
                "within": "2s",
            }
        },
    }
    assert httpx.post(f"{server.url}/v1/segments", json=body, headers=admin).status_code == 201
    sent = httpx.post(
        f"{server.url}/v1/track",
        json={"userId": "e2e-cart", "event": "Product Added", "properties": {"sku": "sku-3"}},
        auth=(WRITE_KEY, ""),
    )
    assert sent.status_code == 200, sent.text
    assert _wait_for(lambda: _segments_of(server, "e2e-cart") == ["quick_abandoner"])
    profile = httpx.get(
        f"{server.url}/v1/profiles/lookup", params={"user_id": "e2e-cart"}, headers=admin
    ).json()
    added_at = datetime.fromisoformat(profile["computed"]["last_seen"])
    changes = httpx.get(f"{server.url}/v1/segments/changes", headers=admin).json()["changes"]
    [entry] = [c for c in changes if c["segment"] == "quick_abandoner"]
    # It entered when the 2 seconds had passed, by the scheduler, not when the event came in.
    assert datetime.fromisoformat(entry["at"]) - added_at >= timedelta(seconds=2)
