"""Model scores per profile on their own SQLite file (``scores.sqlite``), via SQLAlchemy Core.

Batch scoring rewrites many rows at once and the decision path reads a few at a time; a file
of its own keeps those writes from contending with profile processing in ``state.sqlite``.
Written against SQLAlchemy's portable core (only the upsert is dialect-specific), so the
PostgreSQL backend can reuse it with another engine.
"""

from __future__ import annotations

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
        self._engine.dispose()
