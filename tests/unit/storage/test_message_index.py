"""The log's in-memory message-id index: exact de-duplication even when hashes collide."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from personify.storage.sqlite.log import SqliteEventLog
from personify.storage.sqlite.message_index import MessageIndex


def _collide(message_id: str) -> int:
    return len(message_id)  # every id of the same length shares a hash


def test_candidates_name_every_offset_of_a_shared_hash() -> None:
    index = MessageIndex(_collide)
    index.add([(2, 1), (2, 2), (3, 3)])
    assert index.candidates([2, 3, 4]) == [[1, 2], [3], []]
    assert index.head == 3 and len(index) == 3


def test_merging_into_the_sorted_base_keeps_every_entry() -> None:
    index = MessageIndex()
    pairs = [(h * 7919 % 1_000_003 - 500_000, offset) for offset, h in enumerate(range(120_000), 1)]
    index.add(pairs)  # large enough to fold the recent dict into the arrays
    index.add([(pairs[0][0], 200_000)])  # a hash already in the base
    assert len(index) == 120_001
    got = index.candidates([pairs[0][0], pairs[5000][0], 10**15])
    assert got == [[1, 200_000], [5001], []]


def test_load_builds_the_same_index_as_adding() -> None:
    rows = [(1, "a"), (2, "bb"), (3, "cc"), (4, "ddd")]
    loaded, added = MessageIndex(_collide), MessageIndex(_collide)
    loaded.load([rows[:2], rows[2:]])
    added.add((len(m), o) for o, m in rows)
    for index in (loaded, added):
        assert index.candidates([1, 2, 3]) == [[1], [2, 3], [4]]
        assert index.head == 4


def test_colliding_ids_are_all_stored_and_each_still_deduplicated(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.sqlite", hasher=_collide)
    assert log.publish([("aa", b"1"), ("bb", b"2")]) == 2  # same hash, different ids
    assert log.publish([("bb", b"x"), ("cc", b"3"), ("aa", b"x")]) == 1
    assert [(r.message_id, r.payload) for r in log.read(0, 10)] == [
        ("aa", b"1"),
        ("bb", b"2"),
        ("cc", b"3"),
    ]
    assert log.replace([("cc", b"{}")]) == 1
    assert log.read(2, 10)[0].payload == b"{}"
    log.close()
    reopened = SqliteEventLog(tmp_path / "log.sqlite", hasher=_collide)
    assert reopened.publish([("cc", b"again"), ("dd", b"4")]) == 1
    assert reopened.count() == 4
    reopened.close()


def test_rows_written_by_another_process_are_seen_before_writing(tmp_path: Path) -> None:
    # Two handles on one file stand for two processes (the API and a CLI import).
    first = SqliteEventLog(tmp_path / "log.sqlite")
    second = SqliteEventLog(tmp_path / "log.sqlite")
    assert first.publish([("a", b"1")]) == 1
    assert second.publish([("b", b"2")]) == 1
    assert first.publish([("b", b"again"), ("c", b"3")]) == 1
    assert second.publish([("a", b"again"), ("c", b"again")]) == 0
    assert [r.offset for r in first.read(0, 10)] == [1, 2, 3]
    assert second.redact(["c"]) == 1
    first.close()
    second.close()


def test_a_log_made_with_the_unique_index_still_works(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE log (offset INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, "
        "payload BLOB NOT NULL)"
    )
    con.execute("INSERT INTO log VALUES (1, 'old', x'7b7d')")
    con.commit()
    con.close()
    log = SqliteEventLog(path)
    assert log.publish([("old", b"{}"), ("new", b"{}")]) == 1
    assert [(r.offset, r.message_id) for r in log.read(0, 10)] == [(1, "old"), (2, "new")]
    log.close()
