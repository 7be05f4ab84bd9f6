"""Quarantined (dead-letter) messages on a SQLite file, durable before the batch is answered."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from personify.storage.ports import quarantine_id
from personify.storage.sqlite.log import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    source TEXT,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    problems TEXT NOT NULL,
    payload TEXT NOT NULL,
    replayed_at TEXT
);
CREATE INDEX IF NOT EXISTS quarantine_status ON quarantine(status, received_at);
"""
_JSON_FIELDS = ("problems", "payload")
_COLUMNS = ("id", "received_at", "source", "status", "reason", "problems", "payload", "replayed_at")


class SqliteQuarantineStore:
    def __init__(self, path: Path) -> None:
        self._con = connect(path)
        self._con.executescript(_SCHEMA)
        self._lock = threading.Lock()

    @staticmethod
    def _row(row: tuple[Any, ...]) -> dict[str, Any]:
        item = dict(zip(_COLUMNS, row, strict=True))
        for name in _JSON_FIELDS:
            item[name] = orjson.loads(item[name])
        return item

    def add(self, items: Sequence[dict[str, Any]]) -> list[str]:
        rows = []
        for item in items:
            rows.append(
                (
                    quarantine_id(item),
                    item["received_at"],
                    item.get("source"),
                    "quarantined",
                    item["reason"],
                    orjson.dumps(item.get("problems", [])).decode(),
                    orjson.dumps(item["payload"]).decode(),
                )
            )
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                self._con.executemany(
                    "INSERT OR IGNORE INTO quarantine(id, received_at, source, status, reason, "
                    "problems, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return [r[0] for r in rows]

    def list(
        self, status: str | None = "quarantined", limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM quarantine"
        params: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status,)
        sql += " ORDER BY received_at, id LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._con.execute(sql, (*params, limit, offset)).fetchall()
        return [self._row(r) for r in rows]

    def get(self, item_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._con.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM quarantine WHERE id = ?", (item_id,)
            ).fetchone()
        return self._row(row) if row else None

    def update(self, item_id: str, **fields: Any) -> None:
        allowed = {"status", "reason", "problems", "payload", "replayed_at"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update quarantine fields {sorted(unknown)}")
        values = [orjson.dumps(v).decode() if k in _JSON_FIELDS else v for k, v in fields.items()]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._con.execute(
                f"UPDATE quarantine SET {assignments} WHERE id = ?", (*values, item_id)
            )

    def count(self, status: str | None = "quarantined") -> int:
        with self._lock:
            if status is None:
                row = self._con.execute("SELECT COUNT(*) FROM quarantine").fetchone()
            else:
                row = self._con.execute(
                    "SELECT COUNT(*) FROM quarantine WHERE status = ?", (status,)
                ).fetchone()
        return int(row[0])

    def scan_payloads(self, batch_size: int = 1000) -> Iterator[Sequence[tuple[str, Any]]]:
        after = ""
        while True:
            with self._lock:
                rows = self._con.execute(
                    "SELECT id, payload FROM quarantine WHERE id > ? ORDER BY id LIMIT ?",
                    (after, batch_size),
                ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield [(str(item_id), orjson.loads(payload)) for item_id, payload in rows]

    def swap_payloads(self, changes: Sequence[tuple[str, Any, Any]]) -> int:
        if not changes:
            return 0
        done = 0
        with self._lock:
            self._con.execute("PRAGMA secure_delete=ON")  # the replaced bytes are zeroed
            self._con.execute("BEGIN IMMEDIATE")
            try:
                for item_id, expected, new in changes:
                    row = self._con.execute(
                        "SELECT payload FROM quarantine WHERE id = ?", (item_id,)
                    ).fetchone()
                    if row is not None and orjson.loads(row[0]) == expected:
                        self._con.execute(
                            "UPDATE quarantine SET payload = ? WHERE id = ?",
                            (orjson.dumps(new).decode(), item_id),
                        )
                        done += 1
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return done

    def close(self) -> None:
        with self._lock:
            self._con.close()
