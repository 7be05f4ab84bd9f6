"""The event store on DuckDB: events appended in bulk from Arrow, read back per profile."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from personify.errors import Unavailable
from personify.profiles.records import EVENT_COLUMNS

_TYPES = {
    "local_hour": "INTEGER",
    "local_weekday": "INTEGER",
    "timestamp": "TIMESTAMPTZ",
    "received_at": "TIMESTAMPTZ",
}
_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


def _arrow_type(column: str) -> pa.DataType:
    return pa.int32() if column in ("local_hour", "local_weekday") else pa.string()


_SCHEMA = pa.schema([(c, _arrow_type(c)) for c in EVENT_COLUMNS])


class DuckDbEventStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        try:
            self._con = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            raise Unavailable(
                f"the event store {path} is locked by another process ({exc})",
                hint="stop the running `personify serve` or use its HTTP API instead",
            ) from exc
        self._con.execute("SET TimeZone = 'UTC'")
        # Checkpointing (compressing the WAL into the file) is costly; do it in big steps.
        self._con.execute("SET checkpoint_threshold = '256MB'")
        cols = ", ".join(f'"{c}" {_TYPES.get(c, "VARCHAR")}' for c in EVENT_COLUMNS)
        self._con.execute(f"CREATE TABLE IF NOT EXISTS events ({cols})")
        found = [r[0] for r in self._con.execute("DESCRIBE events").fetchall()]
        if found != list(EVENT_COLUMNS):
            self._con.close()
            raise Unavailable(
                f"the event store {path} has columns {found}, this version expects "
                f"{list(EVENT_COLUMNS)}",
                hint="it was written by another personify version: rebuild it from the log "
                "or use a new PERSONIFY_DATA_DIR",
            )
        self._con.execute(
            'CREATE TABLE IF NOT EXISTS checkpoints (name VARCHAR PRIMARY KEY, "offset" BIGINT)'
        )
        # The row exists from the start, so each batch updates it in place: an UPDATE costs
        # about a third of an INSERT OR REPLACE here (~0.5 against ~1.8 ms per batch).
        self._con.execute(
            "INSERT INTO checkpoints SELECT 'events', 0 "
            "WHERE NOT EXISTS (SELECT 1 FROM checkpoints WHERE name = 'events')"
        )
        casts = ", ".join(
            f'CAST("{c}" AS TIMESTAMPTZ)' if c in ("timestamp", "received_at") else f'"{c}"'
            for c in EVENT_COLUMNS
        )
        self._insert = f"INSERT INTO events SELECT {casts} FROM _batch"
        self._lock = threading.Lock()
        self._select = ", ".join(
            f'strftime("{c}", \'{_ISO}\') AS "{c}"'
            if c in ("timestamp", "received_at")
            else f'"{c}"'
            for c in EVENT_COLUMNS
        )

    def append(self, events: Sequence[dict[str, Any]], checkpoint: int | None = None) -> None:
        # Arrow converts the row dicts in C++ (missing keys become nulls): several times
        # faster than building each column in Python.
        table = pa.Table.from_pylist(list(events), schema=_SCHEMA)
        with self._lock, self._transaction() as cur:
            if events:
                cur.register("_batch", table)
                cur.execute(self._insert)
                cur.unregister("_batch")
            if checkpoint is not None:
                cur.execute(
                    "UPDATE checkpoints SET \"offset\" = ? WHERE name = 'events'", [checkpoint]
                )
                if cur.fetchone() == (0,):  # the row went missing: never lose the checkpoint
                    cur.execute("INSERT INTO checkpoints VALUES ('events', ?)", [checkpoint])

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor in one transaction: committed if the block ends, rolled back if it raises
        (called with the lock held)."""
        cur = self._con.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def checkpoint(self) -> int:
        with self._lock:
            row = self._con.execute(
                "SELECT \"offset\" FROM checkpoints WHERE name = 'events'"
            ).fetchone()
        return int(row[0]) if row else 0

    def timeline(
        self, profile_ids: Sequence[str], limit: int = 100, before: str | None = None
    ) -> list[dict[str, Any]]:
        if not profile_ids:
            return []
        marks = ", ".join("?" for _ in profile_ids)
        sql = f"SELECT {self._select} FROM events WHERE profile_id IN ({marks})"
        params: list[Any] = list(profile_ids)
        if before is not None:
            sql += ' AND "timestamp" < CAST(? AS TIMESTAMPTZ)'
            params.append(before)
        sql += ' ORDER BY "timestamp" DESC, message_id DESC LIMIT ?'
        params.append(limit)
        with self._lock:
            cur = self._con.cursor()
            try:
                rel = cur.execute(sql, params)
                names = [d[0] for d in rel.description]
                rows = rel.fetchall()
            finally:
                cur.close()
        return [dict(zip(names, r, strict=True)) for r in rows]

    def scan(
        self,
        events: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[list[dict[str, Any]]]:
        cols = ("profile_id", "type", "event", "timestamp", "payload")
        select = ", ".join(
            f'strftime("{c}", \'{_ISO}\') AS "{c}"' if c == "timestamp" else f'"{c}"' for c in cols
        )
        sql = f"SELECT {select} FROM events"
        params: list[Any] = []
        tests = []
        if events:
            tests.append(f"event IN ({', '.join('?' for _ in events)})")
            params += list(events)
        if types:
            tests.append(f"type IN ({', '.join('?' for _ in types)})")
            params += list(types)
        if tests:
            sql += " WHERE " + " OR ".join(tests)
        sql += ' ORDER BY "timestamp", message_id'
        with self._lock:
            cur = self._con.cursor()
        try:
            rel = cur.execute(sql, params)
            while True:
                rows = rel.fetchmany(batch_size)
                if not rows:
                    return
                yield [dict(zip(cols, r, strict=True)) for r in rows]
        finally:
            cur.close()

    def delete_profiles(self, profile_ids: Sequence[str]) -> list[str]:
        if not profile_ids:
            return []
        marks = ", ".join("?" for _ in profile_ids)
        return self._delete_where(f"profile_id IN ({marks})", list(profile_ids))

    def delete_before(
        self, before: str, events: Sequence[str] | None = None, keep: Sequence[str] = ()
    ) -> list[str]:
        where = '"timestamp" < CAST(? AS TIMESTAMPTZ)'
        params: list[Any] = [before]
        if events:
            where += f" AND event IN ({', '.join('?' for _ in events)})"
            params += list(events)
        if keep:
            where += f" AND (event IS NULL OR event NOT IN ({', '.join('?' for _ in keep)}))"
            params += list(keep)
        return self._delete_where(where, params)

    def _delete_where(self, where: str, params: list[Any]) -> list[str]:
        """Delete the matching rows in one transaction, then compact; their message ids."""
        with self._lock:
            with self._transaction() as cur:
                ids = cur.execute(f"SELECT message_id FROM events WHERE {where}", params).fetchall()
                cur.execute(f"DELETE FROM events WHERE {where}", params)
            if ids:
                self._compact()
        return [str(r[0]) for r in ids]

    def _compact(self) -> None:
        """Rewrite the file without the deleted rows (called with the lock held).

        DuckDB leaves deleted rows' bytes in free blocks of the file; erasure must remove
        them, so the database is copied into a fresh file that replaces the old one. Scans
        running at that moment fail (erasures are rare and short).
        """
        fresh = self._path.with_name(self._path.name + ".compact")
        fresh.unlink(missing_ok=True)
        db = self._con.execute("SELECT current_database()").fetchone()
        assert db is not None
        quoted = str(fresh).replace("'", "''")
        self._con.execute(f"ATTACH '{quoted}' AS compacted")
        self._con.execute(f'COPY FROM DATABASE "{db[0]}" TO compacted')
        self._con.execute("DETACH compacted")
        self._con.close()
        os.replace(fresh, self._path)
        self._con = duckdb.connect(str(self._path))
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute("SET checkpoint_threshold = '256MB'")

    def count(self) -> int:
        with self._lock:
            row = self._con.execute("SELECT COUNT(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A cursor for batch jobs in this process (model retraining): same database, own
        transactions; close it when done."""
        with self._lock:
            return self._con.cursor()

    def count_distinct_messages(self) -> int:
        with self._lock:
            row = self._con.execute("SELECT COUNT(DISTINCT message_id) FROM events").fetchone()
        return int(row[0]) if row else 0

    def scan_payloads(self, batch_size: int = 10_000) -> Iterator[list[tuple[str, str]]]:
        # One snapshot read on its own cursor, like ``scan``: appends and swaps go on meanwhile.
        with self._lock:
            cur = self._con.cursor()
        try:
            rel = cur.execute("SELECT message_id, payload FROM events WHERE payload IS NOT NULL")
            while True:
                rows = rel.fetchmany(batch_size)
                if not rows:
                    return
                yield [(str(mid), str(payload)) for mid, payload in rows]
        finally:
            cur.close()

    def swap_payloads(self, changes: Sequence[tuple[str, str, str]]) -> int:
        if not changes:
            return 0
        batch = pa.table(
            {
                "message_id": pa.array([c[0] for c in changes], pa.string()),
                "expected": pa.array([c[1] for c in changes], pa.string()),
                "new": pa.array([c[2] for c in changes], pa.string()),
            }
        )
        with self._lock, self._transaction() as cur:
            cur.register("_swaps", batch)
            row = cur.execute(
                "UPDATE events SET payload = s.new FROM _swaps AS s "
                "WHERE events.message_id = s.message_id AND events.payload = s.expected"
            ).fetchone()
            cur.unregister("_swaps")
        return int(row[0]) if row else 0

    def compact(self) -> None:
        """Rewrite the file so the bytes of replaced and deleted rows leave it (after a key
        rotation swapped payloads; erasure and retention compact by themselves)."""
        with self._lock:
            self._compact()

    def close(self) -> None:
        with self._lock:
            self._con.close()
