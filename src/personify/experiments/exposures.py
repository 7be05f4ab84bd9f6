"""Exposure log: who was first shown which variant of which experiment, and when.

Analysis starts from exposures, not from assignments: a user assigned to a test who never
reached the placement cannot have been influenced by it, and counting them only dilutes the
effect. An exposure is recorded **once per (experiment, unit)**, with the variant and the
time of the first exposure; later decisions for the same unit do not move it (that is what
makes "conversion within N days of exposure" well defined). The first writer wins.

>>> log = MemoryExposureLog()
>>> log.record("hero", "p_1", "loyalty", 10.0), log.record("hero", "p_1", "loyalty", 99.0)
(True, False)
>>> log.frame("hero").to_dict("records")
[{'experiment': 'hero', 'unit': 'p_1', 'variant': 'loyalty', 'exposed_at': 10.0}]
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import pandas as pd

COLUMNS = ["experiment", "unit", "variant", "exposed_at"]


class ExposureLog(Protocol):
    """Where first exposures are kept (memory for tests, SQLite under the data directory)."""

    def record(self, experiment: str, unit: str, variant: str, at: float) -> bool:
        """Record a first exposure; False (and no change) if the unit was already exposed."""
        ...

    def frame(self, experiment: str) -> pd.DataFrame:
        """Exposures of one experiment: columns experiment, unit, variant, exposed_at (epoch s)."""
        ...


class MemoryExposureLog:
    """A dict of first exposures."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def record(self, experiment: str, unit: str, variant: str, at: float) -> bool:
        with self._lock:
            if (experiment, unit) in self._rows:
                return False
            self._rows[(experiment, unit)] = (variant, at)
            return True

    def frame(self, experiment: str) -> pd.DataFrame:
        rows = [(e, u, v, t) for (e, u), (v, t) in self._rows.items() if e == experiment]
        return pd.DataFrame(rows, columns=COLUMNS)


class SqliteExposureLog:
    """``exposures.sqlite`` under the data directory; ``INSERT OR IGNORE`` keeps the first.

    Units already seen by this process are remembered (a bounded set), so the common case,
    a returning visitor, does not write to disk on the decision path.
    """

    def __init__(self, path: Path, *, cache_size: int = 500_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._cache_size = cache_size
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS exposures ("
                " experiment TEXT NOT NULL, unit TEXT NOT NULL,"
                " variant TEXT NOT NULL, exposed_at REAL NOT NULL, PRIMARY KEY (experiment, unit))"
            )

    def record(self, experiment: str, unit: str, variant: str, at: float) -> bool:
        key = (experiment, unit)
        with self._lock:
            if key in self._seen:
                return False
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO exposures VALUES (?, ?, ?, ?)",
                (experiment, unit, variant, at),
            )
            self._seen[key] = None
            if len(self._seen) > self._cache_size:
                self._seen.popitem(last=False)
            return cursor.rowcount == 1

    def frame(self, experiment: str) -> pd.DataFrame:
        with self._lock:
            rows = self._conn.execute(
                "SELECT experiment, unit, variant, exposed_at FROM exposures WHERE experiment = ?"
                " ORDER BY exposed_at",
                (experiment,),
            ).fetchall()
        return pd.DataFrame(rows, columns=COLUMNS)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
