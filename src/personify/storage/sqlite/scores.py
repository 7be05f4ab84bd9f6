"""Model scores per profile on their own SQLite file (``scores.sqlite``), via SQLAlchemy Core.

Batch scoring rewrites many rows at once and the decision path reads a few at a time; a file
of its own keeps those writes from contending with profile processing in ``state.sqlite``.
Written against SQLAlchemy's portable core (only the upsert is dialect-specific), so the
PostgreSQL backend can reuse it with another engine.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Engine, Float, Integer, MetaData, String, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite

from personify.storage.memory.scores import checked_scores
from personify.storage.sqlite.profiles import sqlite_engine

metadata = MetaData()
scores_t = Table(
    "scores",
    metadata,
    Column("profile_id", String(64), primary_key=True),
    Column("model", String(64), primary_key=True),
    Column("value", Float, nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", String(40), nullable=False),
)
_CHUNK = 500


class SqlScoreStore:
    """Latest score per (profile, model); ``put`` is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        metadata.create_all(engine)
        # One profile's scores are read on every profile view and decision: a plain sqlite3
        # connection per thread avoids SQLAlchemy's per-statement overhead there.
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._file = database if database and database != ":memory:" else None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    def _reader(self) -> sqlite3.Connection | None:
        if self._file is None:
            return None
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self._file, timeout=30, check_same_thread=False)
            self._local.con = con
            with self._readers_lock:
                self._readers.append(con)
        return con

    @classmethod
    def open(cls, path: Path) -> SqlScoreStore:
        """The embedded store at ``path`` (WAL, like the other SQLite files)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(sqlite_engine(f"sqlite:///{path}"))

    def put(self, model: str, version: int, scores: Mapping[str, float], at: str) -> None:
        rows = [
            {"profile_id": pid, "model": model, "value": v, "version": int(version), "at": at}
            for pid, v in checked_scores(model, scores)
        ]
        if not rows:
            return
        stmt = self._insert(scores_t)
        stmt = stmt.on_conflict_do_update(
            index_elements=[scores_t.c.profile_id, scores_t.c.model],
            set_={
                "value": stmt.excluded.value,
                "version": stmt.excluded.version,
                "at": stmt.excluded.at,
            },
        )
        with self._engine.begin() as con:
            for i in range(0, len(rows), 5_000):
                con.execute(stmt, rows[i : i + 5_000])

    def get_many(self, profile_ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        ids = list(dict.fromkeys(profile_ids))
        out: dict[str, dict[str, dict[str, Any]]] = {}
        reader = self._reader() if len(ids) == 1 else None
        if reader is not None:
            for pid, model, value, version, at in reader.execute(
                "SELECT profile_id, model, value, version, at FROM scores WHERE profile_id = ?",
                (ids[0],),
            ).fetchall():
                out.setdefault(pid, {})[model] = {
                    "value": float(value),
                    "version": int(version),
                    "at": at,
                }
            return out
        mark = "%s" if self._engine.dialect.name == "postgresql" else "?"
        with self._engine.connect() as con:
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                # Driver SQL: this is on the decision path, where building a statement per
                # call costs more than the query.
                rows = con.exec_driver_sql(
                    "SELECT profile_id, model, value, version, at FROM scores "
                    f"WHERE profile_id IN ({', '.join([mark] * len(chunk))})",
                    tuple(chunk),
                ).fetchall()
                for pid, model, value, version, at in rows:
                    out.setdefault(pid, {})[model] = {
                        "value": float(value),
                        "version": int(version),
                        "at": at,
                    }
        return out

    def delete_profiles(self, profile_ids: Iterable[str]) -> int:
        ids = list(dict.fromkeys(profile_ids))
        removed = 0
        with self._engine.begin() as con:
            for i in range(0, len(ids), _CHUNK):
                result = con.execute(
                    scores_t.delete().where(scores_t.c.profile_id.in_(ids[i : i + _CHUNK]))
                )
                removed += int(result.rowcount)
        return removed

    def count(self, model: str | None = None) -> int:
        query = select(func.count()).select_from(scores_t)
        if model is not None:
            query = query.where(scores_t.c.model == model)
        with self._engine.connect() as con:
            return int(con.execute(query).scalar() or 0)

    def close(self) -> None:
        with self._readers_lock:
            for con in self._readers:
                con.close()
            self._readers.clear()
        self._engine.dispose()
