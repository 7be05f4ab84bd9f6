"""Contract: every QuarantineStore adapter keeps items until replayed, with their reason."""

from __future__ import annotations

from typing import Any


def _item(n: int) -> dict[str, Any]:
    return {
        "received_at": f"2024-01-01T00:00:0{n}.000000Z",
        "source": "web",
        "reason": f"bad {n}",
        "problems": [{"field": "event", "message": "is required"}],
        "payload": {"type": "track", "n": n},
    }


def test_added_items_are_listed_oldest_first_with_reason(quarantine_store: Any) -> None:
    ids = quarantine_store.add([_item(2), _item(1)])
    assert len(set(ids)) == 2
    items = quarantine_store.list()
    assert [i["reason"] for i in items] == ["bad 1", "bad 2"]
    assert items[0]["payload"] == {"type": "track", "n": 1}
    assert items[0]["problems"][0]["field"] == "event"
    assert items[0]["status"] == "quarantined"
    assert quarantine_store.count() == 2


def test_update_moves_an_item_to_replayed(quarantine_store: Any) -> None:
    first, second = quarantine_store.add([_item(1), _item(2)])
    quarantine_store.update(first, status="replayed", replayed_at="2024-01-02T00:00:00Z")
    assert [i["id"] for i in quarantine_store.list()] == [second]
    assert [i["id"] for i in quarantine_store.list(status="replayed")] == [first]
    assert quarantine_store.count(status=None) == 2
    assert quarantine_store.get(first)["replayed_at"] == "2024-01-02T00:00:00Z"
    assert quarantine_store.get("nope") is None


def test_list_pages_with_limit_and_offset(quarantine_store: Any) -> None:
    quarantine_store.add([_item(i) for i in range(1, 6)])
    assert [i["reason"] for i in quarantine_store.list(limit=2, offset=2)] == ["bad 3", "bad 4"]


def test_the_same_message_set_aside_again_is_one_item(quarantine_store: Any) -> None:
    [first] = quarantine_store.add([_item(1)])
    again = {**_item(1), "received_at": "2024-01-03T00:00:00.000000Z", "reason": "bad again"}
    # a retry, or the same file imported again: same source and payload, one item, kept as is
    assert quarantine_store.add([again, _item(2)])[0] == first
    assert quarantine_store.count() == 2
    assert quarantine_store.get(first)["reason"] == "bad 1"
    # a replayed item is not set aside again by a copy of its original message
    quarantine_store.update(first, status="replayed", replayed_at="2024-01-04T00:00:00Z")
    assert quarantine_store.add([_item(1)]) == [first]
    assert quarantine_store.count() == 1 and quarantine_store.count(status=None) == 2
    # another source, or another payload, is another item
    assert quarantine_store.add([{**_item(1), "source": "app"}])[0] != first
    assert quarantine_store.add([{**_item(1), "payload": {"type": "track", "n": 9}}])[0] != first
