"""A small SQLite helper shared by the privacy stores (keys, consent, suppression, jobs).

Every privacy store is one SQLite file under the data directory (or an in-memory database
for the memory backend). ``secure_delete`` is on so that deleted rows are overwritten with
zeros instead of lingering in free pages: erasure must remove bytes, not only rows.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Db:
    """One serialized connection to a SQLite file (or ``:memory:`` when ``path`` is None)."""

    def __init__(self, path: Path | None, schema: str, *, synchronous: str = "FULL") -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._con = sqlite3.connect(
            ":memory:" if path is None else str(path),
            check_same_thread=False,
            isolation_level=None,
            timeout=30.0,
        )
        if path is not None:
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute(f"PRAGMA synchronous={synchronous}")
        self._synchronous = synchronous
        self._con.execute("PRAGMA secure_delete=ON")
        self._con.execute("PRAGMA busy_timeout=30000")
        self._lock = threading.RLock()
        self._con.executescript(schema)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql, tuple(params)).fetchall()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), committed on success."""
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                yield self._con
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise

    @contextmanager
    def durable(self, on: bool = True) -> Iterator[None]:
        """Make the enclosed commits fsync even on a connection opened with NORMAL
        (a change nobody could replay, such as one made through the API)."""
        if not on or self.path is None:
            yield
            return
        with self._lock:
            self._con.execute("PRAGMA synchronous=FULL")
            try:
                yield
            finally:
                self._con.execute(f"PRAGMA synchronous={self._synchronous}")

    def close(self) -> None:
        with self._lock:
            self._con.close()


def scrub(path: Path) -> None:
    """Rewrite a SQLite file so bytes of deleted rows leave it (VACUUM, then empty the WAL).

    Rows deleted before ``secure_delete`` was on (and old versions of rewritten rows) stay in
    free pages until the file is rebuilt; VACUUM rebuilds it. Readers in other processes can
    keep part of the WAL alive; the next checkpoint overwrites it.
    """
    if not path.exists():
        return
    con = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    try:
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("VACUUM")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
