"""Contract: stored payloads can be read back as stored and compare-and-swapped in place
(PII key rotation), and a swap never undoes a concurrent erasure."""

from __future__ import annotations

from typing import Any

import orjson
from tests.contract.test_event_store import _event

from personify.storage.ports import ERASED_ANONYMOUS_ID


def test_log_swaps_a_payload_only_while_it_is_unchanged(event_log: Any) -> None:
    event_log.publish([("m1", b'{"v": 1}'), ("m2", b'{"v": 2}'), ("m3", b'{"v": 3}')])
    swaps = [(1, b'{"v": 1}', b'{"v": 10}'), (2, b'{"v": 99}', b'{"v": 20}')]
    assert event_log.swap_payloads(swaps) == 1  # m2 no longer holds what the caller read
    assert event_log.swap_payloads([]) == 0
    records = event_log.read(0, 10)
    assert [(r.offset, r.message_id, r.payload) for r in records] == [
        (1, "m1", b'{"v": 10}'),
        (2, "m2", b'{"v": 2}'),
        (3, "m3", b'{"v": 3}'),
    ]
    assert event_log.head() == 3 and event_log.count() == 3
    assert event_log.publish([("m1", b"{}")]) == 0  # still de-duplicated


def test_log_swap_loses_to_a_redaction(event_log: Any) -> None:
    event_log.publish([("m1", b'{"userId": "ann"}')])
    [read] = event_log.read(0, 10)
    event_log.redact(["m1"])  # an erasure between the read and the swap
    assert event_log.swap_payloads([(read.offset, read.payload, b'{"userId": "ann2"}')]) == 0
    [after] = event_log.read(0, 10)
    assert orjson.loads(after.payload)["anonymousId"] == ERASED_ANONYMOUS_ID


def test_event_store_scans_and_swaps_payloads(event_store: Any) -> None:
    event_store.append(
        [
            _event(f"m{i}", "p1", f"2024-01-0{i}T00:00:00.000000Z", payload=f'{{"v": {i}}}')
            for i in range(1, 4)
        ],
        checkpoint=3,
    )
    batches = list(event_store.scan_payloads(batch_size=2))
    assert all(1 <= len(b) <= 2 for b in batches)
    assert sorted(pair for b in batches for pair in b) == [
        ("m1", '{"v": 1}'),
        ("m2", '{"v": 2}'),
        ("m3", '{"v": 3}'),
    ]
    swaps = [("m1", '{"v": 1}', '{"v": 10}'), ("m2", '{"v": 0}', '{"v": 20}')]
    assert event_store.swap_payloads(swaps) == 1
    assert event_store.swap_payloads([]) == 0
    rows = {r["message_id"]: r for r in event_store.timeline(["p1"])}
    assert {m: r["payload"] for m, r in rows.items()} == {
        "m1": '{"v": 10}',
        "m2": '{"v": 2}',
        "m3": '{"v": 3}',
    }
    # every other column and the checkpoint are untouched
    assert (
        rows["m1"]["timestamp"] == "2024-01-01T00:00:00.000000Z" and rows["m1"]["local_hour"] == 3
    )
    assert event_store.count() == 3 and event_store.checkpoint() == 3


def test_event_store_swap_loses_to_a_deletion(event_store: Any) -> None:
    event_store.append([_event("m1", "p1", "2024-01-01T00:00:00.000000Z")])
    [[(mid, payload)]] = list(event_store.scan_payloads())
    assert event_store.delete_profiles(["p1"]) == ["m1"]
    assert event_store.swap_payloads([(mid, payload, '{"v": 1}')]) == 0
    assert event_store.count() == 0 and list(event_store.scan_payloads()) == []


def _item(n: int) -> dict[str, Any]:
    return {
        "payload": {"type": "identify", "traits": {"email": f"q{n}@example.com"}},
        "reason": "no userId",
        "problems": [{"field": "userId", "message": "required"}],
        "source": "web",
        "received_at": f"2024-01-0{n}T00:00:00.000000Z",
    }


def test_quarantine_scans_and_swaps_payloads(quarantine_store: Any) -> None:
    ids = quarantine_store.add([_item(1), _item(2), _item(3)])
    batches = list(quarantine_store.scan_payloads(batch_size=2))
    assert all(1 <= len(b) <= 2 for b in batches)
    found = dict(pair for b in batches for pair in b)
    assert found == {i: _item(n)["payload"] for i, n in zip(ids, (1, 2, 3), strict=True)}
    new = {"type": "identify", "traits": {"email": "sealed"}}
    stale = {"type": "identify", "traits": {"email": "something else"}}
    assert quarantine_store.swap_payloads([(ids[0], found[ids[0]], new), (ids[1], stale, new)]) == 1
    assert quarantine_store.swap_payloads([]) == 0
    assert quarantine_store.get(ids[0])["payload"] == new
    assert quarantine_store.get(ids[1])["payload"] == _item(2)["payload"]
    item = quarantine_store.get(ids[0])  # reason, problems, source and time stay
    assert (item["reason"], item["source"], item["status"]) == ("no userId", "web", "quarantined")
    assert quarantine_store.swap_payloads([("q_unknown", {}, new)]) == 0


def test_quarantine_swap_loses_to_an_erasure(quarantine_store: Any) -> None:
    [item_id] = quarantine_store.add([_item(1)])
    [[(_, payload)]] = list(quarantine_store.scan_payloads())
    quarantine_store.update(item_id, status="erased", payload={}, problems=[])
    assert quarantine_store.swap_payloads([(item_id, payload, {"traits": {"x": 1}})]) == 0
    assert quarantine_store.get(item_id)["payload"] == {}
