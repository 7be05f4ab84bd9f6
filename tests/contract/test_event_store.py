"""Contract: every EventStore adapter appends with its checkpoint and reads timelines."""

from __future__ import annotations

from typing import Any

from personify.profiles.records import EVENT_COLUMNS


def _event(mid: str, pid: str, ts: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS)
    row.update(
        message_id=mid,
        profile_id=pid,
        type="track",
        event="Viewed",
        timestamp=ts,
        received_at=ts,
        local_hour=3,
        payload='{"properties": {"a": 1}}',
    )
    row.update(extra)
    return row


def test_timeline_is_newest_first_and_limited_to_the_profiles(event_store: Any) -> None:
    event_store.append(
        [
            _event("m1", "p1", "2024-01-01T00:00:00.000000Z"),
            _event("m2", "p1", "2024-01-03T00:00:00.000000Z"),
            _event("m3", "p2", "2024-01-02T00:00:00.000000Z"),
            _event("m4", "p3", "2024-01-04T00:00:00.000000Z"),
        ],
        checkpoint=4,
    )
    rows = event_store.timeline(["p1", "p2"])
    assert [r["message_id"] for r in rows] == ["m2", "m3", "m1"]
    assert rows[0]["timestamp"] == "2024-01-03T00:00:00.000000Z"
    assert rows[0]["local_hour"] == 3 and rows[0]["payload"] == '{"properties": {"a": 1}}'
    assert event_store.checkpoint() == 4


def test_timeline_pages_back_with_before(event_store: Any) -> None:
    event_store.append(
        [_event(f"m{i}", "p1", f"2024-01-0{i}T00:00:00.000000Z") for i in range(1, 6)]
    )
    page = event_store.timeline(["p1"], limit=2, before="2024-01-04T00:00:00.000000Z")
    assert [r["message_id"] for r in page] == ["m3", "m2"]


def test_counts_and_empty_append_moves_only_the_checkpoint(event_store: Any) -> None:
    assert event_store.checkpoint() == 0
    event_store.append([_event("m1", "p1", "2024-01-01T00:00:00.000000Z")], checkpoint=1)
    event_store.append([], checkpoint=5)
    assert event_store.count() == 1
    assert event_store.count_distinct_messages() == 1
    assert event_store.checkpoint() == 5
    assert event_store.timeline([]) == []
