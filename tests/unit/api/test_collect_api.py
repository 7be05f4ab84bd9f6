"""The Segment HTTP Tracking API: good paths, limits, and precise errors on bad input."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from personify.facade import Personify

AUTH = {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}


def post(client: TestClient, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(path, content=orjson.dumps(body), headers={**AUTH, **(headers or {})})


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("track", {"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}}),
        ("identify", {"userId": "u1", "traits": {"email": "a@b.co"}}),
        ("page", {"anonymousId": "a1", "name": "Home"}),
        ("screen", {"anonymousId": "a1", "name": "Cart"}),
        ("group", {"userId": "u1", "groupId": "acme"}),
        ("alias", {"userId": "u1", "previousId": "a1"}),
    ],
)
def test_each_single_endpoint_accepts_a_valid_message(
    client: TestClient, engine: Personify, kind: str, body: dict[str, Any]
) -> None:
    resp = post(client, f"/v1/{kind}", body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["success"] is True
    assert engine.stores.log.count() == 1


def test_write_key_may_come_in_the_body(client: TestClient, engine: Personify) -> None:
    resp = client.post(
        "/v1/track", content=orjson.dumps({"writeKey": "wk", "userId": "u1", "event": "E"})
    )
    assert resp.status_code == 200
    engine.drain()
    assert engine.profile_by("user_id", "u1")["computed"]["event_counts"] == {"E": 1}


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, {"userId": "u", "event": "E"}, "missing write key"),
        (
            {"Authorization": "Basic " + base64.b64encode(b"nope:").decode()},
            {"userId": "u", "event": "E"},
            "unknown write key",
        ),
        ({"Authorization": "Basic %%%"}, {"userId": "u", "event": "E"}, "malformed Basic"),
    ],
)
def test_bad_write_keys_get_401_with_a_hint(
    client: TestClient, headers: dict[str, str], body: Any, message: str
) -> None:
    resp = client.post("/v1/track", content=orjson.dumps(body), headers=headers)
    assert resp.status_code == 401
    assert message in resp.json()["message"]
    assert resp.json()["hint"]


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"userId": "u1"}, "event", "required"),
        ({"event": "E"}, "userId", "userId or anonymousId"),
        ({"userId": "u1", "event": "E", "properties": "oops"}, "properties", "dictionary"),
        ({"userId": "u1", "event": "E", "timestamp": "yesterday"}, "timestamp", "datetime"),
        ({"userId": "u1", "event": ""}, "event", "at least 1"),
        ({"userId": {"a": 1}, "event": "E"}, "userId", "string"),
    ],
)
def test_invalid_single_messages_get_400_naming_the_field(
    client: TestClient, engine: Personify, body: Any, field: str, fragment: str
) -> None:
    resp = post(client, "/v1/track", body)
    assert resp.status_code == 400, resp.text
    problems = resp.json()["problems"]
    assert any(p["field"] == field and fragment in p["message"] for p in problems), problems
    assert engine.stores.log.count() == 0


def test_malformed_json_gets_400(client: TestClient) -> None:
    resp = client.post("/v1/track", content=b'{"userId": "u1",', headers=AUTH)
    assert resp.status_code == 400
    assert "malformed JSON" in resp.json()["message"]


def test_a_message_over_32kb_gets_413(client: TestClient) -> None:
    resp = post(
        client, "/v1/track", {"userId": "u", "event": "E", "properties": {"x": "a" * 33_000}}
    )
    assert resp.status_code == 413


@pytest.mark.parametrize("sent", ["plain", "gzip", "chunked"])
@pytest.mark.parametrize("kind", ["track", "identify", "page"])
def test_an_oversized_single_message_is_told_to_move_payloads_out_not_to_split(
    client: TestClient, kind: str, sent: str
) -> None:
    body = orjson.dumps({"userId": "u", "event": "E", "properties": {"x": "a" * 40_000}})
    content: Any = {"plain": body, "gzip": gzip.compress(body), "chunked": iter([body])}[sent]
    headers = {**AUTH, "Content-Encoding": "gzip"} if sent == "gzip" else AUTH
    resp = client.post(f"/v1/{kind}", content=content, headers=headers)
    assert resp.status_code == 413
    assert "out of the event" in resp.json()["hint"]
    assert "batch" not in resp.json()["hint"]


def test_a_single_message_that_inflates_past_the_limit_is_told_to_shrink_the_message(
    client: TestClient, engine: Personify
) -> None:
    limit = engine.settings.collect.max_decompressed_bytes
    bomb = b'{"userId": "u", "event": "E", "x": "' + b"a" * limit + b'"}'
    headers = {**AUTH, "Content-Encoding": "gzip"}
    resp = client.post("/v1/track", content=gzip.compress(bomb), headers=headers)
    assert resp.status_code == 413 and "decompressed" in resp.json()["message"]
    assert "out of the event" in resp.json()["hint"]


def test_an_oversized_batch_is_still_told_to_split(client: TestClient) -> None:
    big = {"batch": [{"type": "track", "userId": "u", "event": "E", "x": "a" * 600_000}]}
    assert "split the batch" in post(client, "/v1/batch", big).json()["hint"]


@pytest.mark.parametrize(("field", "value"), [("context", 5), ("integrations", "x")])
def test_a_batch_level_default_that_is_not_an_object_gets_400_naming_it(
    client: TestClient, engine: Personify, field: str, value: object
) -> None:
    batch = {"batch": [{"type": "track", "userId": "u1", "event": "E"}], field: value}
    resp = post(client, "/v1/batch", batch)
    assert resp.status_code == 400
    assert resp.json()["problems"] == [{"field": field, "message": "must be an object"}]
    assert f"'{field}' must be an object" in resp.json()["message"]
    assert engine.stores.log.count() == 0


def test_a_batch_level_null_context_is_taken_as_absent(
    client: TestClient, engine: Personify
) -> None:
    batch = {"batch": [{"type": "track", "userId": "u1", "event": "E"}], "context": None}
    resp = post(client, "/v1/batch", batch)
    assert resp.status_code == 200 and resp.json()["accepted"] == 1
    assert engine.stores.log.count() == 1


def test_batch_over_500kb_or_2500_messages_gets_413(client: TestClient) -> None:
    big = {
        "batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"x": "a" * 20_000}}]
        * 30
    }
    assert post(client, "/v1/batch", big).status_code == 413
    many = {"batch": [{"type": "track", "userId": "u", "event": "E"}] * 2501}
    resp = post(client, "/v1/batch", many)
    assert resp.status_code == 413 and "2501" in resp.json()["message"]


def test_gzip_batches_are_accepted(client: TestClient, engine: Personify) -> None:
    body = gzip.compress(
        orjson.dumps(
            {
                "batch": [
                    {"type": "track", "userId": "u1", "event": "E", "messageId": "m1"},
                    {
                        "type": "identify",
                        "userId": "u1",
                        "traits": {"name": "Ada"},
                        "messageId": "m2",
                    },
                ]
            }
        )
    )
    resp = client.post("/v1/batch", content=body, headers={**AUTH, "Content-Encoding": "gzip"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 2


def test_truncated_gzip_is_refused_clearly(client: TestClient) -> None:
    body = gzip.compress(b'{"batch": []}')[:-6]
    resp = client.post("/v1/batch", content=body, headers={**AUTH, "Content-Encoding": "gzip"})
    assert resp.status_code == 415


def test_invalid_messages_in_a_batch_are_quarantined_and_the_rest_kept(
    client: TestClient, engine: Personify
) -> None:
    batch = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "Good", "messageId": "ok-1"},
            {"type": "track", "userId": "u1", "messageId": "bad-1"},
            {"type": "teleport", "userId": "u1", "messageId": "bad-2"},
            "not an object",
            {"type": "page", "anonymousId": "a1", "messageId": "ok-2"},
        ]
    }
    resp = post(client, "/v1/batch", batch)
    assert resp.status_code == 200
    body = resp.json()
    assert body["accepted"] == 2
    assert [q["index"] for q in body["quarantined"]] == [1, 2, 3]
    assert body["quarantined"][0]["problems"][0]["field"] == "batch[1].event"
    assert body["quarantined"][1]["problems"][0]["field"] == "batch[2].type"
    assert engine.stores.quarantine.count() == 3


def test_quarantined_messages_can_be_listed_corrected_and_replayed(
    client: TestClient, engine: Personify
) -> None:
    post(client, "/v1/batch", {"batch": [{"type": "track", "userId": "u9", "messageId": "x"}]})
    admin = {"Authorization": "Bearer admin"}
    listed = client.get("/v1/quarantine", headers=admin).json()
    assert listed["total"] == 1
    item = listed["items"][0]
    still = client.post(f"/v1/quarantine/{item['id']}/replay", headers=admin).json()
    assert still["status"] == "quarantined"
    fixed = {**item["payload"], "event": "Fixed"}
    done = client.post(
        f"/v1/quarantine/{item['id']}/replay", headers=admin, json={"payload": fixed}
    ).json()
    assert done == {"id": item["id"], "status": "replayed", "accepted": 1}
    engine.drain()
    assert engine.profile_by("user_id", "u9")["computed"]["event_counts"] == {"Fixed": 1}
    assert client.get("/v1/quarantine", headers=admin).json()["total"] == 0


def test_a_repeated_message_id_is_acknowledged_but_stored_once(
    client: TestClient, engine: Personify
) -> None:
    msg = {"type": "track", "userId": "u1", "event": "Paid", "messageId": "same"}
    for _ in range(3):
        assert post(client, "/v1/batch", {"batch": [msg]}).status_code == 200
    assert post(client, "/v1/track", msg).status_code == 200
    engine.drain()
    assert engine.stores.events.count() == 1
    assert engine.profile_by("user_id", "u1")["computed"]["event_counts"] == {"Paid": 1}


def test_timestamp_is_corrected_for_client_clock_skew(
    client: TestClient, engine: Personify
) -> None:
    # The client's clock is 1 hour fast: it says it sent at 13:00 while the server saw 12:00.
    batch = {
        "sentAt": "2024-05-01T13:00:00Z",
        "batch": [
            {"type": "track", "userId": "u1", "event": "E", "timestamp": "2024-05-01T12:59:00Z"}
        ],
    }
    post(client, "/v1/batch", batch)
    engine.drain()
    event = engine.timeline(engine.lookup("user_id", "u1"))[0]
    assert event["timestamp"] == "2024-05-01T11:59:00.000000Z"  # server clock is 12:00
    assert event["received_at"] == "2024-05-01T12:00:00.000000Z"


def test_profile_endpoints_need_the_admin_key(client: TestClient, engine: Personify) -> None:
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "ada@example.com"}})
    engine.drain()
    assert client.get("/v1/profiles/lookup?user_id=u1").status_code == 401
    ok = client.get(
        "/v1/profiles/lookup?email=ADA@example.com", headers={"Authorization": "Bearer admin"}
    )
    assert ok.status_code == 200
    pid = ok.json()["profile_id"]
    events = client.get(f"/v1/profiles/{pid}/events", headers={"Authorization": "Bearer admin"})
    assert [e["type"] for e in events.json()["events"]] == ["identify"]
    missing = client.get(
        "/v1/profiles/lookup?user_id=nobody", headers={"Authorization": "Bearer admin"}
    )
    assert missing.status_code == 404
    two = client.get(
        "/v1/profiles/lookup?user_id=u1&email=x@y.z", headers={"Authorization": "Bearer admin"}
    )
    assert two.status_code == 400


def test_health_is_public_but_stats_need_the_admin_key(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert set(health.json()) == {"status", "log_head", "processed_up_to", "lag"}
    assert client.get("/v1/stats").status_code == 401
    stats = client.get("/v1/stats", headers={"Authorization": "Bearer admin"})
    assert stats.json()["profiles"] == 0 and stats.json()["processor_error"] is None
