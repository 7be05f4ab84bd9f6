"""Contract: every ProfileStore adapter applies changes atomically with the checkpoint."""

from __future__ import annotations

from typing import Any

from personify.profiles.records import new_profile
from personify.storage.ports import ProfileChanges


def _changes(pid: str = "p1") -> ProfileChanges:
    doc = new_profile(pid, "2024-01-01T00:00:00.000000Z")
    doc["identities"]["user_id"].append("u1")
    return ProfileChanges(profiles={pid: doc}, identities={("user_id", "u1"): pid})


def test_applied_profiles_and_identities_can_be_read_back(profile_store: Any) -> None:
    profile_store.apply(_changes(), checkpoint=7)
    assert profile_store.lookup_many([("user_id", "u1"), ("user_id", "nobody")]) == {
        ("user_id", "u1"): "p1"
    }
    doc = profile_store.get_many(["p1", "missing"])
    assert list(doc) == ["p1"]
    assert doc["p1"]["identities"]["user_id"] == ["u1"]
    assert profile_store.checkpoint() == 7
    assert profile_store.count() == 1


def test_checkpoint_starts_at_zero_and_only_moves_when_given(profile_store: Any) -> None:
    assert profile_store.checkpoint() == 0
    profile_store.apply(_changes(), checkpoint=None)
    assert profile_store.checkpoint() == 0


def test_upsert_replaces_the_document_and_identity_target(profile_store: Any) -> None:
    profile_store.apply(_changes("p1"))
    survivor = new_profile("p2", "2024-01-02T00:00:00.000000Z")
    loser = profile_store.get_many(["p1"])["p1"]
    loser["merged_into"] = "p2"
    profile_store.apply(
        ProfileChanges(
            profiles={"p1": loser, "p2": survivor},
            identities={("user_id", "u1"): "p2"},
            merges=[{"survivor_id": "p2", "merged_id": "p1", "reason": "test"}],
            conflicts=[{"profile_ids": ["p2", "p9"], "detail": "x"}],
        )
    )
    assert profile_store.lookup_many([("user_id", "u1")]) == {("user_id", "u1"): "p2"}
    assert profile_store.get_many(["p1"])["p1"]["merged_into"] == "p2"
    assert profile_store.count() == 1
    history = profile_store.history("p1")
    assert [m["survivor_id"] for m in history["merges"]] == ["p2"]
    assert profile_store.history("p9")["conflicts"][0]["detail"] == "x"


def test_returned_documents_are_copies(profile_store: Any) -> None:
    profile_store.apply(_changes())
    doc = profile_store.get_many(["p1"])["p1"]
    doc["traits"]["x"] = 1
    assert profile_store.get_many(["p1"])["p1"]["traits"] == {}


def test_documents_come_back_exactly_as_written(profile_store: Any) -> None:
    # Awkward JSON on purpose: the SQLite adapter writes all rows through one JSON array.
    import orjson

    doc = new_profile('p"1', "2024-01-01T00:00:00.000000Z")
    doc["traits"] = {
        "name": {"value": 'Zoë "Z" \\ 🎉\n', "source": "api", "at": "2024"},
        "score": {"value": 0.1 + 0.2, "source": "api", "at": "2024"},
        "big": {"value": 2**62 + 1, "source": "api", "at": "2024"},
        "nested": {"value": {"a": [1, None, True, -1e-7]}, "source": "api", "at": "2024"},
    }
    doc["merged_into"] = "p2"
    profile_store.apply(
        ProfileChanges(
            profiles={'p"1': doc},
            identities={("email", 'zoë"@x.org'): 'p"1'},
            encoded={'p"1': orjson.dumps(doc)},
        )
    )
    assert profile_store.get_many(['p"1'])['p"1'] == doc
    assert profile_store.lookup_many([("email", 'zoë"@x.org')]) == {("email", 'zoë"@x.org'): 'p"1'}


def test_merged_into_names_the_profiles_merged_into_these(profile_store: Any) -> None:
    def merged(pid: str, into: str | None) -> dict[str, Any]:
        doc = new_profile(pid, "2024-01-01T00:00:00.000000Z")
        doc["merged_into"] = into
        return doc

    rows = {"p1": None, "p2": "p1", "p3": "p2", "p4": None, "p5": "p4", "p6": "p1"}
    # read right after the write: a store that writes in the background must see it
    profile_store.apply(ProfileChanges(profiles={p: merged(p, i) for p, i in rows.items()}))
    assert sorted(profile_store.merged_into(["p1"])) == ["p2", "p6"]  # not p3: one step only
    assert sorted(profile_store.merged_into(["p1", "p2", "p4", "nobody"])) == [
        "p2",
        "p3",
        "p5",
        "p6",
    ]
    assert profile_store.merged_into(["p3", "nobody"]) == []
    assert profile_store.merged_into([]) == []
    profile_store.delete_profiles(["p2"])
    assert profile_store.merged_into(["p1"]) == ["p6"]
