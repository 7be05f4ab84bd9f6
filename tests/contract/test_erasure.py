"""Contract: every adapter can forget a person (privacy erasure) and keeps everyone else."""

from __future__ import annotations

from typing import Any

import orjson
from tests.contract.test_event_store import _event

from personify.profiles.records import new_profile
from personify.storage.ports import ERASED_ANONYMOUS_ID, ProfileChanges


def _person(pid: str, user: str) -> ProfileChanges:
    doc = new_profile(pid, "2024-01-01T00:00:00.000000Z")
    doc["identities"]["user_id"].append(user)
    doc["identities"]["email"].append(f"{user}@example.com")
    return ProfileChanges(
        profiles={pid: doc},
        identities={("user_id", user): pid, ("email", f"{user}@example.com"): pid},
    )


def test_profile_store_deletes_profiles_keys_merges_and_conflicts(profile_store: Any) -> None:
    profile_store.apply(_person("p1", "ann"))
    profile_store.apply(_person("p2", "bob"))
    loser = new_profile("p3", "2024-01-01T00:00:00.000000Z")
    loser["merged_into"] = "p1"
    profile_store.apply(
        ProfileChanges(
            profiles={"p3": loser},
            merges=[{"survivor_id": "p1", "merged_id": "p3", "identities": [["user_id", "x"]]}],
            conflicts=[{"profile_ids": ["p1", "p2"], "key": ["email", "ann@example.com"]}],
        )
    )
    assert profile_store.delete_profiles(["p1", "p3"]) == 2
    assert profile_store.get_many(["p1", "p3"]) == {}
    assert profile_store.lookup_many([("user_id", "ann"), ("email", "ann@example.com")]) == {}
    assert profile_store.history("p1") == {"merges": [], "conflicts": []}
    assert profile_store.history("p2") == {"merges": [], "conflicts": []}
    # everyone else is untouched
    assert profile_store.lookup_many([("user_id", "bob")]) == {("user_id", "bob"): "p2"}
    assert profile_store.count() == 1
    assert profile_store.delete_profiles(["p1"]) == 0  # repeating is harmless


def test_event_store_deletes_a_persons_events_and_names_them(event_store: Any) -> None:
    event_store.append(
        [
            _event("m1", "p1", "2024-01-01T00:00:00.000000Z"),
            _event("m2", "p2", "2024-01-02T00:00:00.000000Z"),
            _event("m3", "p3", "2024-01-03T00:00:00.000000Z"),
        ],
        checkpoint=3,
    )
    assert sorted(event_store.delete_profiles(["p1", "p3"])) == ["m1", "m3"]
    assert event_store.timeline(["p1", "p3"]) == []
    assert [e["message_id"] for e in event_store.timeline(["p2"])] == ["m2"]
    assert event_store.count() == 1
    assert event_store.checkpoint() == 3
    assert event_store.delete_profiles(["p1"]) == []
    event_store.append([_event("m4", "p2", "2024-01-04T00:00:00.000000Z")])  # still writable
    assert event_store.count() == 2


def test_log_redaction_keeps_offsets_and_deduplication(event_log: Any) -> None:
    event_log.publish([("m1", b'{"userId": "ann"}'), ("m2", b'{"userId": "bob"}')])
    assert event_log.redact(["m1", "unknown"]) == 1
    first, second = event_log.read(0, 10)
    assert (first.offset, first.message_id) == (1, "m1")
    tomb = orjson.loads(first.payload)
    assert tomb["anonymousId"] == ERASED_ANONYMOUS_ID and b"ann" not in first.payload
    assert second.payload == b'{"userId": "bob"}'
    assert event_log.publish([("m1", b'{"userId": "ann"}')]) == 0  # still de-duplicated
    assert event_log.head() == 2


def test_event_store_deletes_by_age_per_event_name(event_store: Any) -> None:
    event_store.append(
        [
            _event("old-view", "p1", "2024-01-01T00:00:00.000000Z"),
            _event("new-view", "p1", "2024-03-01T00:00:00.000000Z"),
            _event("old-order", "p1", "2024-01-01T00:00:00.000000Z", event="Order Completed"),
            _event("old-page", "p1", "2024-01-01T00:00:00.000000Z", type="page", event=None),
        ]
    )
    cutoff = "2024-02-01T00:00:00.000000Z"
    assert event_store.delete_before(cutoff, ["Viewed"]) == ["old-view"]
    assert event_store.delete_before(cutoff, None, keep=["Order Completed"]) == ["old-page"]
    left = {e["message_id"] for e in event_store.timeline(["p1"])}
    assert left == {"new-view", "old-order"}
    assert event_store.delete_before(cutoff) == ["old-order"]
