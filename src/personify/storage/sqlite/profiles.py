"""Profiles and the identity graph on SQLAlchemy Core (SQLite file by default).

Written against SQLAlchemy's portable core so the PostgreSQL backend reuses it with a
different engine; the hot statements are plain SQL (``INSERT ... ON CONFLICT``) that both
dialects accept, only the parameter mark differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    Column,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.schema import CreateIndex

from personify.storage.ports import ProfileChanges

metadata = MetaData()
profiles_t = Table(
    "profiles",
    metadata,
    Column("profile_id", String(64), primary_key=True),
    Column("doc", LargeBinary, nullable=False),
    Column("merged_into", String(64), nullable=True),
    Column("updated_at", String(40), nullable=False),
)
# Partial: most rows are live (NULL), so ingestion writes no entry for them, and an erasure
# finds what was merged into the person's profiles without scanning the table.
merged_into_ix = Index(
    "ix_profiles_merged_into",
    profiles_t.c.merged_into,
    sqlite_where=profiles_t.c.merged_into.is_not(None),
    postgresql_where=profiles_t.c.merged_into.is_not(None),
)
identities_t = Table(
    "identities",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("value", String(1024), primary_key=True),
    Column("profile_id", String(64), nullable=False, index=True),
)
merges_t = Table(
    "merges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("survivor_id", String(64), nullable=False, index=True),
    Column("merged_id", String(64), nullable=False, index=True),
    Column("doc", Text, nullable=False),
)
conflicts_t = Table(
    "identity_conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("profile_a", String(64), nullable=False, index=True),
    Column("profile_b", String(64), nullable=True, index=True),
    Column("doc", Text, nullable=False),
)
checkpoints_t = Table(
    "checkpoints",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("offset", Integer, nullable=False),
)

_CHUNK = 500


def sqlite_engine(url: str) -> Engine:
    """An engine whose connections use WAL and a busy timeout (safe for many threads)."""
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_con: Any, _record: Any) -> None:
        cur = dbapi_con.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        # Profiles are rewritten often: a larger WAL means a hot page is copied back once.
        cur.execute("PRAGMA wal_autocheckpoint=20000")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    return engine


class EncodedChanges(NamedTuple):
    """A batch of :class:`ProfileChanges` as the rows the SQL tables take (picklable, so a
    writer process can store them: ``personify.storage.sqlite.profile_writer``)."""

    profiles: list[tuple[str, bytes, str | None, str]]  # id, JSON doc, merged_into, updated_at
    identities: list[tuple[str, str, str]]  # kind, value, profile id
    merges: list[tuple[str, str, str]]  # survivor, merged, JSON record
    conflicts: list[tuple[str, str | None, str]]  # profile a, profile b, JSON record


def encode_changes(changes: ProfileChanges) -> EncodedChanges:
    """The rows for ``changes`` (documents serialized unless ``changes.encoded`` has them)."""
    now = datetime.now(UTC).isoformat()
    encoded = changes.encoded
    dumps = orjson.dumps
    return EncodedChanges(
        [
            (pid, encoded.get(pid) or dumps(doc), doc.get("merged_into"), now)
            for pid, doc in changes.profiles.items()
        ],
        [(k, v, pid) for (k, v), pid in changes.identities.items()],
        [(m["survivor_id"], m["merged_id"], dumps(m).decode()) for m in changes.merges],
        [
            (
                c["profile_ids"][0],
                c["profile_ids"][1] if len(c["profile_ids"]) > 1 else None,
                dumps(c).decode(),
            )
            for c in changes.conflicts
        ],
    )


class SqlProfileStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._mark = "%s" if engine.dialect.name == "postgresql" else "?"
        metadata.create_all(engine)
        with engine.begin() as con:  # create_all adds no index to a table made before it
            con.execute(CreateIndex(merged_into_ix, if_not_exists=True))

    @property
    def url(self) -> str:
        """The database URL (a writer process opens the same database with it)."""
        return self._engine.url.render_as_string(hide_password=False)

    def _marks(self, n: int) -> str:
        return ", ".join([self._mark] * n)

    def _rows_in(self, select: str, column: str, values: Iterable[str]) -> Iterator[Any]:
        """Rows of ``select ... WHERE column IN (values)``, in chunks under SQLite's limit on
        parameters (each distinct value asked once)."""
        wanted = list(dict.fromkeys(values))
        with self._engine.connect() as con:
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i : i + _CHUNK]
                yield from con.exec_driver_sql(
                    f"{select} WHERE {column} IN ({self._marks(len(chunk))})", tuple(chunk)
                )

    def get_many(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        rows = self._rows_in("SELECT profile_id, doc FROM profiles", "profile_id", profile_ids)
        return {pid: orjson.loads(doc) for pid, doc in rows}

    def lookup_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        by_kind: dict[str, list[str]] = {}
        for kind, value in dict.fromkeys(keys):
            by_kind.setdefault(kind, []).append(value)
        out: dict[tuple[str, str], str] = {}
        with self._engine.connect() as con:
            for kind, values in by_kind.items():
                for i in range(0, len(values), _CHUNK):
                    chunk = values[i : i + _CHUNK]
                    rows = con.exec_driver_sql(
                        f"SELECT value, profile_id FROM identities WHERE kind = {self._mark} "
                        f"AND value IN ({self._marks(len(chunk))})",
                        (kind, *chunk),
                    )
                    for value, pid in rows:
                        out[(kind, value)] = pid
        return out

    def apply(self, changes: ProfileChanges, checkpoint: int | None = None) -> None:
        self.write(encode_changes(changes), checkpoint)

    def settle(self) -> None:
        """Writes are synchronous here: nothing is ever in flight."""

    def write(self, rows: EncodedChanges, checkpoint: int | None = None) -> None:
        """Store changes already encoded by :func:`encode_changes`, in one transaction.

        Plain driver SQL on the hot path: building SQLAlchemy constructs for every batch costs
        more than the statements themselves.
        """
        m = self._mark
        with self._engine.begin() as con:
            if rows.profiles:
                con.exec_driver_sql(
                    f"INSERT INTO profiles (profile_id, doc, merged_into, updated_at) "
                    f"VALUES ({m}, {m}, {m}, {m}) ON CONFLICT (profile_id) DO UPDATE SET "
                    "doc = excluded.doc, merged_into = excluded.merged_into, "
                    "updated_at = excluded.updated_at",
                    rows.profiles,
                )
            if rows.identities:
                con.exec_driver_sql(
                    f"INSERT INTO identities (kind, value, profile_id) VALUES ({m}, {m}, {m}) "
                    "ON CONFLICT (kind, value) DO UPDATE SET profile_id = excluded.profile_id",
                    rows.identities,
                )
            if rows.merges:
                con.exec_driver_sql(
                    f"INSERT INTO merges (survivor_id, merged_id, doc) VALUES ({m}, {m}, {m})",
                    rows.merges,
                )
            if rows.conflicts:
                con.exec_driver_sql(
                    f"INSERT INTO identity_conflicts (profile_a, profile_b, doc) "
                    f"VALUES ({m}, {m}, {m})",
                    rows.conflicts,
                )
            if checkpoint is not None:
                con.exec_driver_sql(
                    f'INSERT INTO checkpoints (name, "offset") VALUES ({m}, {m}) '
                    'ON CONFLICT (name) DO UPDATE SET "offset" = excluded."offset"',
                    ("profiles", checkpoint),
                )

    def checkpoint(self) -> int:
        # Read on every collection request (backpressure) and health check: keep it plain.
        with self._engine.connect() as con:
            value = con.exec_driver_sql(
                f'SELECT "offset" FROM checkpoints WHERE name = {self._mark}', ("profiles",)
            ).scalar()
        return int(value or 0)

    def history(self, profile_id: str) -> dict[str, list[dict[str, Any]]]:
        m = self._mark
        with self._engine.connect() as con:
            merges = con.exec_driver_sql(
                f"SELECT doc FROM merges WHERE survivor_id = {m} OR merged_id = {m} ORDER BY id",
                (profile_id, profile_id),
            ).scalars()
            merge_docs = [orjson.loads(d) for d in merges]
            conflicts = con.exec_driver_sql(
                f"SELECT doc FROM identity_conflicts WHERE profile_a = {m} OR profile_b = {m} "
                "ORDER BY id",
                (profile_id, profile_id),
            ).scalars()
            conflict_docs = [orjson.loads(d) for d in conflicts]
        return {"merges": merge_docs, "conflicts": conflict_docs}

    def count(self) -> int:
        with self._engine.connect() as con:
            value = con.execute(
                select(func.count())
                .select_from(profiles_t)
                .where(profiles_t.c.merged_into.is_(None))
            ).scalar()
        return int(value or 0)

    def scan(self, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        after = ""
        while True:
            with self._engine.connect() as con:
                rows = con.exec_driver_sql(
                    f"SELECT profile_id, doc FROM profiles WHERE merged_into IS NULL "
                    f"AND profile_id > {self._mark} ORDER BY profile_id LIMIT {int(batch_size)}",
                    (after,),
                ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield [orjson.loads(doc) for _, doc in rows]

    def delete_profiles(self, profile_ids: Iterable[str]) -> int:
        ids = list(dict.fromkeys(profile_ids))
        m = self._mark
        removed = 0
        with self._engine.begin() as con:
            if self._engine.dialect.name == "sqlite":  # zero the freed bytes, not just unlink
                con.exec_driver_sql("PRAGMA secure_delete=ON")
            for pid in ids:
                removed += con.exec_driver_sql(
                    f"DELETE FROM profiles WHERE profile_id = {m}", (pid,)
                ).rowcount
                con.exec_driver_sql(f"DELETE FROM identities WHERE profile_id = {m}", (pid,))
                con.exec_driver_sql(
                    f"DELETE FROM merges WHERE survivor_id = {m} OR merged_id = {m}", (pid, pid)
                )
                con.exec_driver_sql(
                    f"DELETE FROM identity_conflicts WHERE profile_a = {m} OR profile_b = {m}",
                    (pid, pid),
                )
        return removed

    def merged_into(self, profile_ids: Iterable[str]) -> list[str]:
        rows = self._rows_in("SELECT profile_id FROM profiles", "merged_into", profile_ids)
        return [str(pid) for (pid,) in rows]

    def close(self) -> None:
        self._engine.dispose()
