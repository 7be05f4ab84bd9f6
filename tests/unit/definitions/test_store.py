"""The definition store contract, run against the memory and the SQLite adapter."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from personify.clock import FixedClock
from personify.definitions import (
    DefinitionStore,
    MemoryDefinitionStore,
    SqlDefinitionStore,
    open_sqlite,
)
from personify.definitions.base import VersionedStore
from personify.errors import InvalidInput, NotFound

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VersionedStore]:
    clock = FixedClock(T0)
    if request.param == "memory":
        yield MemoryDefinitionStore(clock)
    else:
        s = open_sqlite(tmp_path, clock)
        yield s
        s.close()


def test_each_change_is_a_new_version_with_actor_message_and_time(store: VersionedStore) -> None:
    one = store.put("rule_set", "home_hero", {"rules": [1]}, actor="ada", message="first")
    two = store.put("rule_set", "home_hero", {"rules": [1, 2]}, actor="bob")
    assert (one.version, two.version) == (1, 2)
    assert (two.actor, two.message, two.created_at) == ("bob", "", T0)
    assert store.get("rule_set", "home_hero").body == {"rules": [1, 2]}
    assert store.get("rule_set", "home_hero", 1).body == {"rules": [1]}
    assert store.get("rule_set", "home_hero", 1).message == "first"


def test_unchanged_body_writes_no_version(store: VersionedStore) -> None:
    store.put("content", "c1", {"b": 1, "a": [1, 2]}, actor="ada")
    again = store.put("content", "c1", {"a": [1, 2], "b": 1}, actor="bob")
    assert again.version == 1
    assert again.actor == "ada"
    assert len(store.history("content", "c1")) == 1


def test_returned_body_is_a_copy(store: VersionedStore) -> None:
    d = store.put("content", "c1", {"a": {"b": 1}}, actor="ada")
    d.body["a"]["b"] = 99
    store.get("content", "c1").body["a"]["b"] = 42
    assert store.get("content", "c1").body == {"a": {"b": 1}}


def test_get_unknown_key_or_version_is_not_found_with_hint(store: VersionedStore) -> None:
    with pytest.raises(NotFound) as missing:
        store.get("content", "nope")
    assert missing.value.hint
    store.put("content", "c1", {"a": 1}, actor="ada")
    with pytest.raises(NotFound, match="no version 7"):
        store.get("content", "c1", 7)


def test_list_returns_latest_live_versions_sorted_by_key(store: VersionedStore) -> None:
    store.put("content", "b", {"v": 1}, actor="ada")
    store.put("content", "a", {"v": 1}, actor="ada")
    store.put("content", "a", {"v": 2}, actor="ada")
    store.put("placement", "p", {"v": 1}, actor="ada")
    store.delete("content", "b", actor="ada")
    assert [(d.key, d.body) for d in store.list("content")] == [("a", {"v": 2})]
    everything = store.list("content", include_deleted=True)
    assert [(d.key, d.deleted) for d in everything] == [("a", False), ("b", True)]


def test_delete_writes_a_tombstone_and_get_explains_it(store: VersionedStore) -> None:
    store.put("content", "c1", {"a": 1}, actor="ada")
    tomb = store.delete("content", "c1", actor="bob")
    assert (tomb.version, tomb.deleted, tomb.body) == (2, True, {})
    with pytest.raises(NotFound) as gone:
        store.get("content", "c1")
    assert "deleted in version 2" in gone.value.message
    assert "roll it back to version 1" in (gone.value.hint or "")
    assert store.get("content", "c1", 2).deleted
    with pytest.raises(NotFound):
        store.delete("content", "c1", actor="bob")


def test_put_after_delete_revives_the_key(store: VersionedStore) -> None:
    store.put("content", "c1", {"a": 1}, actor="ada")
    store.delete("content", "c1", actor="ada")
    back = store.put("content", "c1", {"a": 1}, actor="ada")
    assert (back.version, back.deleted) == (3, False)


def test_rollback_writes_a_new_version_equal_to_the_old_body(store: VersionedStore) -> None:
    store.put("content", "c1", {"a": 1}, actor="ada")
    store.put("content", "c1", {"a": 2}, actor="ada")
    store.delete("content", "c1", actor="ada")
    restored = store.rollback("content", "c1", 1, actor="bob")
    assert (restored.version, restored.body, restored.actor) == (4, {"a": 1}, "bob")
    assert restored.message == "rollback to version 1"
    with pytest.raises(InvalidInput, match="is a deletion"):
        store.rollback("content", "c1", 3, actor="bob")
    with pytest.raises(NotFound):
        store.rollback("content", "c1", 9, actor="bob")


def test_history_lists_every_version_oldest_first(store: VersionedStore) -> None:
    for n in range(3):
        store.put("content", "c1", {"n": n}, actor="ada")
    assert [d.version for d in store.history("content", "c1")] == [1, 2, 3]
    with pytest.raises(NotFound):
        store.history("content", "never")


def test_diff_names_each_changed_json_path(store: VersionedStore) -> None:
    store.put(
        "rule_set",
        "home_hero",
        {"rules": [{"id": "r1", "when": {"x": 1}}], "fallback": "a"},
        actor="ada",
    )
    store.put(
        "rule_set",
        "home_hero",
        {"rules": [{"id": "r1", "when": {"x": 2}}, {"id": "r2"}], "note": "hi"},
        actor="ada",
    )
    assert store.diff("rule_set", "home_hero", 1, 2) == [
        '- fallback: "a"',
        '+ note: "hi"',
        "~ rules[0].when.x: 1 -> 2",
        '+ rules[1]: {"id":"r2"}',
    ]
    assert store.diff("rule_set", "home_hero", 2, 2) == []


def test_revision_and_changed_since_report_every_write(store: VersionedStore) -> None:
    start = store.revision()
    assert start == 0
    store.put("content", "a", {"v": 1}, actor="ada")
    store.put("content", "a", {"v": 1}, actor="ada")  # unchanged: no write
    store.put("placement", "p", {"v": 1}, actor="ada")
    changed, token = store.changed_since(start)
    assert [(d.kind, d.key, d.version) for d in changed] == [
        ("content", "a", 1),
        ("placement", "p", 1),
    ]
    assert token == store.revision() == 2
    store.delete("content", "a", actor="ada")
    later, token2 = store.changed_since(token)
    assert [(d.key, d.deleted) for d in later] == [("a", True)]
    assert token2 == 3
    assert store.changed_since(token2) == ([], 3)


@pytest.mark.parametrize(
    ("kind", "key", "field"),
    [
        ("Content", "ok", "kind"),
        ("content", "", "key"),
        ("content", "a b", "key"),
        ("content", "../x", "key"),
    ],
)
def test_bad_kind_or_key_is_refused_with_the_field(
    store: VersionedStore, kind: str, key: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as bad:
        store.put(kind, key, {}, actor="ada")
    assert [p.field for p in bad.value.problems] == [field]


def test_body_must_be_a_json_object_and_actor_is_required(store: VersionedStore) -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        store.put("content", "c", [1], actor="ada")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="plain JSON"):
        store.put("content", "c", {"when": object()}, actor="ada")
    with pytest.raises(InvalidInput, match="actor"):
        store.put("content", "c", {}, actor=" ")


def test_sqlite_store_is_shared_across_handles_and_survives_reopen(tmp_path: Path) -> None:
    writer = open_sqlite(tmp_path)
    reader = open_sqlite(tmp_path)
    before = reader.revision()
    writer.put("content", "c1", {"a": 1}, actor="ada")
    assert reader.revision() == before + 1
    assert reader.get("content", "c1").body == {"a": 1}
    writer.close()
    reader.close()
    again = open_sqlite(tmp_path)
    assert again.history("content", "c1")[0].actor == "ada"
    assert (tmp_path / "definitions.sqlite").exists()
    again.close()


def test_concurrent_writers_never_share_a_version_number(tmp_path: Path) -> None:
    stores: list[SqlDefinitionStore] = [open_sqlite(tmp_path) for _ in range(4)]

    def write(s: SqlDefinitionStore, who: int) -> None:
        for n in range(10):
            s.put("content", "hot", {"who": who, "n": n}, actor=f"w{who}")

    threads = [threading.Thread(target=write, args=(s, i)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    versions = [d.version for d in stores[0].history("content", "hot")]
    assert versions == list(range(1, 41))
    for s in stores:
        s.close()


def test_both_adapters_satisfy_the_port(tmp_path: Path) -> None:
    sql = open_sqlite(tmp_path)
    ports: list[DefinitionStore] = [MemoryDefinitionStore(), sql]
    for port in ports:
        assert port.put("content", "k", {"a": 1}, actor="ada").version == 1
    sql.close()
