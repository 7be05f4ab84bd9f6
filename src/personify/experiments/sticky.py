"""Sticky assignment: once a visitor saw a variation, they keep it, even after logging in.

Hash-based assignment is already stable for one id. It changes when the id does: an
anonymous visitor hashed on ``anonymous_id`` would be re-hashed on ``user_id`` after logging
in and could flip variation mid-test, which contaminates the result. The sticky store keeps
``(attribute, value) -> {experiment: variation}``; an assignment is written under every id the
visitor is known by at that moment, and read back by any of them, so the anonymous id carries
the assignment over to the new user id (which is then written too).

>>> store = MemoryStickyStore()
>>> store.remember([("anonymous_id", "a1")], "hero__0", 1)
>>> store.lookup([("user_id", "u1"), ("anonymous_id", "a1")], "hero__0")
1
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

VisitorId = tuple[str, str]


class StickyStore(Protocol):
    """Where sticky assignments live (memory for tests, SQLite under the data directory)."""

    def lookup(self, ids: Sequence[VisitorId], experiment: str) -> int | None:
        """The variation stored for ``experiment`` under the first of ``ids`` that has one."""
        ...

    def remember(self, ids: Sequence[VisitorId], experiment: str, variation: int) -> None:
        """Store ``variation`` under every id that does not have one for ``experiment`` yet."""
        ...


class MemoryStickyStore:
    """A dict; nothing survives the process (tests, simulations)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def lookup(self, ids: Sequence[VisitorId], experiment: str) -> int | None:
        for attribute, value in ids:
            found = self._data.get((attribute, value, experiment))
            if found is not None:
                return found
        return None

    def remember(self, ids: Sequence[VisitorId], experiment: str, variation: int) -> None:
        with self._lock:
            for attribute, value in ids:
                self._data.setdefault((attribute, value, experiment), variation)

    def __len__(self) -> int:
        return len(self._data)


class SqliteStickyStore:
    """A table in ``sticky.sqlite`` under the data directory (embedded mode).

    First writer wins (``INSERT OR IGNORE``): an assignment, once stored for an id, is never
    overwritten, which is the whole point of stickiness. Because stored assignments never
    change, they are also kept in a bounded in-process cache, so a returning visitor costs
    no disk access on the decision path.
    """

    def __init__(self, path: Path, *, cache_size: int = 200_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self._cache_size = cache_size
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS sticky_assignments ("
                " attribute TEXT NOT NULL, value TEXT NOT NULL, experiment TEXT NOT NULL,"
                " variation INTEGER NOT NULL, PRIMARY KEY (attribute, value, experiment))"
            )

    def _cached(self, key: tuple[str, str, str], variation: int) -> None:
        self._cache[key] = variation
        self._cache.move_to_end(key)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _read(self, key: tuple[str, str, str]) -> int | None:
        found = self._cache.get(key)
        if found is not None:
            return found
        row = self._conn.execute(
            "SELECT variation FROM sticky_assignments"
            " WHERE attribute = ? AND value = ? AND experiment = ?",
            key,
        ).fetchone()
        if row is None:
            return None
        self._cached(key, int(row[0]))
        return int(row[0])

    def lookup(self, ids: Sequence[VisitorId], experiment: str) -> int | None:
        with self._lock:
            for attribute, value in ids:
                found = self._read((attribute, value, experiment))
                if found is not None:
                    return found
        return None

    def remember(self, ids: Sequence[VisitorId], experiment: str, variation: int) -> None:
        with self._lock:
            for attribute, value in ids:
                key = (attribute, value, experiment)
                if key in self._cache:
                    continue
                self._conn.execute(
                    "INSERT OR IGNORE INTO sticky_assignments VALUES (?, ?, ?, ?)",
                    (*key, variation),
                )
                self._read(key)  # cache what is stored (another process may have won)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
