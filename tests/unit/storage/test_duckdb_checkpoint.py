"""The DuckDB event store keeps its checkpoint in one row it updates in place."""

from __future__ import annotations

from pathlib import Path

import duckdb

from personify.storage.duckdb.events import DuckDbEventStore


def _row(mid: str) -> dict[str, object]:
    return {
        "message_id": mid,
        "profile_id": "p1",
        "type": "track",
        "event": "Viewed",
        "timestamp": "2026-01-01T00:00:00.000000Z",
        "payload": "{}",
    }


def test_checkpoint_survives_reopening_and_moves_with_each_batch(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    store = DuckDbEventStore(path)
    assert store.checkpoint() == 0
    store.append([_row("m1")], checkpoint=3)
    store.append([], checkpoint=8)
    store.close()
    again = DuckDbEventStore(path)
    try:
        assert again.checkpoint() == 8
        again.append([_row("m2")], checkpoint=9)
        assert again.checkpoint() == 9
        assert again.count() == 2
    finally:
        again.close()
    rows = duckdb.connect(str(path)).execute('SELECT name, "offset" FROM checkpoints').fetchall()
    assert rows == [("events", 9)]  # one row, updated, never a second one


def test_a_file_written_before_the_row_existed_starts_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    DuckDbEventStore(path).close()
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM checkpoints")  # as a file that never stored a batch
    con.close()
    store = DuckDbEventStore(path)
    try:
        assert store.checkpoint() == 0
        store.append([_row("m1")], checkpoint=4)
        assert store.checkpoint() == 4
    finally:
        store.close()


def test_a_checkpoint_row_removed_while_open_is_written_again(tmp_path: Path) -> None:
    store = DuckDbEventStore(tmp_path / "events.duckdb")
    try:
        store.append([_row("m1")], checkpoint=2)
        store._con.execute("DELETE FROM checkpoints")  # whatever removed it, the next batch
        store.append([_row("m2")], checkpoint=5)  # must not update zero rows and lose it
        assert store.checkpoint() == 5
    finally:
        store.close()
