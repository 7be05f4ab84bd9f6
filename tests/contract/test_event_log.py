"""Contract: every EventLog adapter orders, de-duplicates and (if durable) keeps records."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def test_publish_assigns_increasing_offsets_in_order(event_log: Any) -> None:
    assert event_log.publish([("a", b"1"), ("b", b"2")]) == 2
    assert event_log.publish([("c", b"3")]) == 1
    records = event_log.read(0, 10)
    assert [r.message_id for r in records] == ["a", "b", "c"]
    assert [r.payload for r in records] == [b"1", b"2", b"3"]
    offsets = [r.offset for r in records]
    assert offsets == sorted(offsets) and len(set(offsets)) == 3
    assert event_log.head() == offsets[-1]


def test_a_message_id_seen_before_is_not_stored_twice(event_log: Any) -> None:
    event_log.publish([("a", b"1")])
    assert event_log.publish([("a", b"changed"), ("b", b"2"), ("b", b"2")]) == 1
    assert [r.payload for r in event_log.read(0, 10)] == [b"1", b"2"]
    assert event_log.count() == 2


def test_read_after_an_offset_pages_forward(event_log: Any) -> None:
    event_log.publish([(str(i), b"x") for i in range(10)])
    first = event_log.read(0, 4)
    second = event_log.read(first[-1].offset, 4)
    assert [r.message_id for r in first + second] == [str(i) for i in range(8)]
    assert event_log.read(event_log.head(), 4) == []


def test_wait_wakes_when_a_record_arrives(event_log: Any) -> None:
    assert event_log.wait(0, timeout=0.01) is False
    timer = threading.Timer(0.05, lambda: event_log.publish([("late", b"x")]))
    timer.start()
    assert event_log.wait(0, timeout=5.0) is True
    timer.join()


def test_durable_log_keeps_records_and_dedupe_across_reopen(
    durable_log_factory: Callable[[], Any],
) -> None:
    log = durable_log_factory()
    log.publish([("a", b"1"), ("b", b"2")])
    log.close()
    reopened = durable_log_factory()
    assert reopened.publish([("a", b"1"), ("c", b"3")]) == 1
    assert [r.message_id for r in reopened.read(0, 10)] == ["a", "b", "c"]
    reopened.close()


def test_ignored_duplicates_use_no_offsets(event_log: Any) -> None:
    event_log.publish([("a", b"1"), ("b", b"2")])
    event_log.publish([("a", b"1"), ("b", b"2"), ("c", b"3")])
    assert [r.offset for r in event_log.read(0, 10)] == [1, 2, 3]
    assert event_log.head() == 3


def test_replace_overwrites_payloads_in_place(event_log: Any) -> None:
    event_log.publish([("m1", b'{"ip": "203.0.113.9"}'), ("m2", b'{"ip": "198.51.100.2"}')])
    assert event_log.replace([("m1", b'{"ip": null}'), ("unknown", b"{}")]) == 1
    first, second = event_log.read(0, 10)
    assert (first.offset, first.message_id, first.payload) == (1, "m1", b'{"ip": null}')
    assert second.payload == b'{"ip": "198.51.100.2"}'
    assert event_log.publish([("m1", b"{}")]) == 0  # still de-duplicated
    assert event_log.replace([]) == 0


def test_replace_never_brings_back_an_erased_message(event_log: Any) -> None:
    event_log.publish([("m1", b'{"userId": "ann", "ip": "203.0.113.9"}')])
    assert event_log.redact(["m1"]) == 1
    assert event_log.replace([("m1", b'{"userId": "ann"}')]) == 0
    [record] = event_log.read(0, 10)
    assert b"ann" not in record.payload and b"Erased" in record.payload
