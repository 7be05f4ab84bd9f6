"""Replaying through the API: a failed replay keeps the quarantined item exactly as it was."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from fastapi.testclient import TestClient

from personify.facade import ONLINE_RETAIL_SOURCE, Personify

WRITE = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}
ADMIN = {"Authorization": "Bearer admin"}
NO_TYPE = {"userId": "b2", "event": "X", "messageId": "d2"}


def quarantine_one(client: TestClient, message: dict[str, Any]) -> dict[str, Any]:
    client.post("/v1/batch", content=orjson.dumps({"batch": [message]}), headers=WRITE)
    items = client.get("/v1/quarantine", headers=ADMIN).json()["items"]
    assert len(items) == 1
    return dict(items[0])


def test_a_failed_corrected_replay_keeps_the_original_payload_and_reason(
    client: TestClient, engine: Personify
) -> None:
    before = quarantine_one(client, NO_TYPE)
    bad_edit = {"type": "track", "userId": "b2"}
    resp = client.post(
        f"/v1/quarantine/{before['id']}/replay", headers=ADMIN, json={"payload": bad_edit}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "quarantined"
    assert any(p["field"] == "event" for p in body["problems"])  # the new problems
    assert engine.stores.quarantine.get(before["id"]) == before  # nothing stored changed
    assert before["payload"] == NO_TYPE


def test_the_original_can_still_be_fixed_after_a_failed_replay(
    client: TestClient, engine: Personify
) -> None:
    item = quarantine_one(client, NO_TYPE)
    url = f"/v1/quarantine/{item['id']}/replay"
    client.post(url, headers=ADMIN, json={"payload": {"type": "track", "userId": "b2"}})
    kept = engine.stores.quarantine.get(item["id"])
    assert kept is not None
    done = client.post(url, headers=ADMIN, json={"payload": {**kept["payload"], "type": "track"}})
    assert done.json() == {"id": item["id"], "status": "replayed", "accepted": 1}
    stored = engine.stores.quarantine.get(item["id"])
    assert stored is not None and stored["status"] == "replayed"
    assert stored["payload"] == {**NO_TYPE, "type": "track"}  # success keeps the correction


def test_replaying_all_leaves_every_still_invalid_item_unchanged(
    client: TestClient, engine: Personify
) -> None:
    before = quarantine_one(client, NO_TYPE)
    resp = client.post("/v1/quarantine/replay", headers=ADMIN).json()
    assert resp["replayed"] == 0 and resp["still_quarantined"] == 1
    assert engine.stores.quarantine.get(before["id"]) == before


def test_a_raw_import_line_asks_for_a_corrected_payload(
    client: TestClient, engine: Personify
) -> None:
    reason = "line 3: updated_at is not an ISO-8601 date"
    engine.collector.quarantine_raw(
        [{"payload": {"_line": 3, "_raw": "c1,Ada,yesterday"}, "reason": reason}], "import:csv"
    )
    item = client.get("/v1/quarantine", headers=ADMIN).json()["items"][0]
    body = client.post(f"/v1/quarantine/{item['id']}/replay", headers=ADMIN).json()
    assert body["status"] == "quarantined" and body["needs_payload"] is True
    assert "raw import line" in body["reason"] and reason in body["reason"]
    assert "must be one of" not in body["reason"]
    assert '"payload"' in body["hint"]
    assert engine.stores.quarantine.get(item["id"]) == item


def test_a_message_quarantined_for_its_size_stays_quarantined_when_replayed(
    client: TestClient, engine: Personify
) -> None:
    big = {"type": "track", "userId": "u9", "event": "E", "properties": {"x": "a" * 40_000}}
    item = quarantine_one(client, big)
    assert "limit" in item["reason"]
    body = client.post(f"/v1/quarantine/{item['id']}/replay", headers=ADMIN).json()
    assert body["status"] == "quarantined" and "limit" in body["reason"]
    assert engine.stores.log.count() == 0


def test_an_invoice_the_online_retail_importer_built_replays_whatever_its_size(
    client: TestClient, engine: Personify
) -> None:
    lines = [{"product_id": f"sku-{i}", "name": "x" * 100, "quantity": 1} for i in range(400)]
    invoice = {
        "type": "track",
        "userId": "17850",
        "event": "Order Completed",
        "messageId": "online-retail:536365",
        "timestamp": "2010-12-01T08:26:00Z",
        "properties": {"order_id": "536365", "products": lines},
    }
    assert len(orjson.dumps(invoice)) > engine.settings.collect.max_message_bytes
    (qid,) = engine.stores.quarantine.add(
        [
            {
                "received_at": "2026-11-24T10:00:00+00:00",
                "source": ONLINE_RETAIL_SOURCE,
                "reason": "line 3: held back with its invoice",
                "problems": [],
                "payload": invoice,
            }
        ]
    )
    body = client.post(f"/v1/quarantine/{qid}/replay", headers=ADMIN).json()
    assert body == {"id": qid, "status": "replayed", "accepted": 1}
