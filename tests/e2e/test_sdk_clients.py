"""The official Segment and RudderStack Python SDKs deliver to personify unchanged."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient
from tests.e2e.conftest import WRITE_KEY, Server

pytestmark = pytest.mark.slow


def _profile(server: Server, **query: str) -> dict[str, object]:
    resp = httpx.get(f"{server.url}/v1/profiles/lookup", params=query, headers=server.admin())
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _events(server: Server, pid: str) -> list[dict[str, object]]:
    resp = httpx.get(f"{server.url}/v1/profiles/{pid}/events", headers=server.admin())
    return list(resp.json()["events"])


def test_segment_analytics_python_events_land_in_the_right_profiles(server: Server) -> None:
    errors: list[object] = []
    client = SegmentClient(
        WRITE_KEY, host=server.url, sync_mode=True, on_error=lambda e, b: errors.append(e)
    )
    client.page(anonymous_id="seg-anon", name="Home", properties={"path": "/"})
    client.track(anonymous_id="seg-anon", event="Product Viewed", properties={"sku": "A1"})
    client.identify(user_id="seg-user", anonymous_id="seg-anon", traits={"email": "s@ex.com"})
    client.track(user_id="seg-user", event="Order Completed", properties={"revenue": 42.5})
    client.alias(previous_id="seg-user", user_id="seg-user-v2")
    client.flush()
    assert errors == []
    server.wait_caught_up()
    prof = _profile(server, user_id="seg-user-v2")
    assert prof == _profile(server, anonymous_id="seg-anon") == _profile(server, email="s@ex.com")
    computed = prof["computed"]
    assert isinstance(computed, dict)
    assert computed["orders"] == 1 and computed["revenue"] == 42.5
    names = {e["event"] for e in _events(server, str(prof["profile_id"]))}
    assert {"Home", "Product Viewed", "Order Completed"} <= names


def test_rudder_sdk_python_gzipped_batches_land_in_the_right_profiles(server: Server) -> None:
    errors: list[object] = []
    client = RudderClient(
        WRITE_KEY, host=server.url, sync_mode=True, on_error=lambda e, b: errors.append(e)
    )
    client.page(anonymous_id="rs-anon", name="Landing")
    client.identify(user_id="rs-user", anonymous_id="rs-anon", traits={"plan": "pro"})
    client.track(user_id="rs-user", event="Product Added", properties={"sku": "B2"})
    client.alias(previous_id="rs-user", user_id="rs-user-v2")
    client.flush()
    assert errors == []
    server.wait_caught_up()
    prof = _profile(server, user_id="rs-user-v2")
    assert prof["profile_id"] == _profile(server, anonymous_id="rs-anon")["profile_id"]
    traits = prof["traits"]
    assert isinstance(traits, dict) and traits["plan"]["value"] == "pro"
    names = {e["event"] for e in _events(server, str(prof["profile_id"]))}
    assert {"Landing", "Product Added"} <= names
