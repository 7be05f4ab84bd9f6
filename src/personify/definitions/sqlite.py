"""Definitions on SQLAlchemy Core: a SQLite file (WAL) in embedded mode.

One append-only table; ``revision`` is its integer primary key, so "anything new?" is a single
``MAX`` over the primary key that other processes can poll cheaply. The unique
``(kind, key, version)`` index makes two concurrent writers of the same key collide instead of
both writing version *n*; the loser reads again and retries.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from personify.clock import Clock
from personify.definitions.base import VersionConflict, VersionedStore
from personify.definitions.records import Definition
from personify.storage.sqlite.profiles import sqlite_engine

metadata = MetaData()
versions_t = Table(
    "definition_versions",
    metadata,
    Column("revision", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("key", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("deleted", Boolean, nullable=False),
    UniqueConstraint("kind", "key", "version", name="definition_versions_key"),
)
_COLS = list(versions_t.c)


def _definition(row: Any) -> Definition:
    return Definition(
        kind=row.kind,
        key=row.key,
        version=row.version,
        body=orjson.loads(row.body),
        actor=row.actor,
        message=row.message,
        created_at=datetime.fromisoformat(row.created_at),
        deleted=bool(row.deleted),
        revision=row.revision,
    )


class SqlDefinitionStore(VersionedStore):
    """Works on any SQLAlchemy engine; :func:`open_sqlite` builds the embedded one."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self._engine = engine
        metadata.create_all(engine)

    def _one(self, stmt: Any) -> Definition | None:
        with self._engine.connect() as con:
            row = con.execute(stmt).first()
        return _definition(row) if row is not None else None

    def _many(self, stmt: Any) -> builtins.list[Definition]:
        with self._engine.connect() as con:
            return [_definition(r) for r in con.execute(stmt)]

    def _latest(self, kind: str, key: str) -> Definition | None:
        t = versions_t.c
        return self._one(
            select(*_COLS).where(t.kind == kind, t.key == key).order_by(t.version.desc()).limit(1)
        )

    def _version(self, kind: str, key: str, version: int) -> Definition | None:
        t = versions_t.c
        return self._one(select(*_COLS).where(t.kind == kind, t.key == key, t.version == version))

    def _latest_all(self, kind: str) -> builtins.list[Definition]:
        t = versions_t.c
        newest = (
            select(func.max(t.revision)).where(t.kind == kind).group_by(t.key).scalar_subquery()
        )
        return self._many(select(*_COLS).where(t.revision.in_(newest)).order_by(t.key))

    def _history(self, kind: str, key: str) -> builtins.list[Definition]:
        t = versions_t.c
        return self._many(select(*_COLS).where(t.kind == kind, t.key == key).order_by(t.version))

    def _append(
        self,
        kind: str,
        key: str,
        version: int,
        body: bytes,
        actor: str,
        message: str,
        deleted: bool,
    ) -> Definition:
        created_at = self._clock.now()
        values = {
            "kind": kind,
            "key": key,
            "version": version,
            "body": body,
            "actor": actor,
            "message": message,
            "created_at": created_at.isoformat(),
            "deleted": deleted,
        }
        try:
            with self._engine.begin() as con:
                result = con.execute(insert(versions_t).values(**values))
                revision = result.inserted_primary_key[0]  # type: ignore[index]
        except IntegrityError as exc:
            raise VersionConflict from exc
        return Definition(
            kind=kind,
            key=key,
            version=version,
            body=orjson.loads(body),
            actor=actor,
            message=message,
            created_at=created_at,
            deleted=deleted,
            revision=int(revision),
        )

    def revision(self) -> int:
        with self._engine.connect() as con:
            value = con.execute(select(func.max(versions_t.c.revision))).scalar()
        return int(value or 0)

    def changed_since(self, token: int) -> tuple[builtins.list[Definition], int]:
        t = versions_t.c
        rows = self._many(select(*_COLS).where(t.revision > token).order_by(t.revision))
        return rows, (rows[-1].revision if rows else max(token, 0))

    def close(self) -> None:
        self._engine.dispose()


def open_sqlite(data_dir: Path, clock: Clock | None = None) -> SqlDefinitionStore:
    """The embedded store: ``data_dir/definitions.sqlite``, WAL, safe across processes."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = sqlite_engine(f"sqlite:///{data_dir / 'definitions.sqlite'}")
    return SqlDefinitionStore(engine, clock)
