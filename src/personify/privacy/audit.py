"""The audit log: who read or changed profiles, consent, definitions and keys, and every
privacy job. Append-only: SQLite triggers refuse any UPDATE or DELETE of a row.

Targets that name a person are written as profile ids or HMAC pseudonyms, never as raw
identifiers, so the audit log survives an erasure without undoing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from personify.errors import InvalidInput
from personify.privacy.db import Db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_action ON audit(action, id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
_COLUMNS = ("id", "at", "actor", "action", "target", "detail")


class AuditLog:
    """Append and query audit records (``audit.sqlite``, or memory)."""

    def __init__(self, path: Path | None) -> None:
        # Every profile read over the API appends a record: NORMAL (no fsync per commit)
        # keeps reads fast; a process crash loses nothing, a power cut the last records.
        self._db = Db(path, _SCHEMA, synchronous="NORMAL")

    def record(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        with self._db.tx() as con:
            cur = con.execute(
                "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                (
                    datetime.now(UTC).isoformat(),
                    actor,
                    action,
                    target,
                    orjson.dumps(dict(detail or {})).decode(),
                ),
            )
            return int(cur.lastrowid or 0)

    def query(
        self,
        *,
        action: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Records oldest first after id ``after``; filters are exact (``action`` may end in
        ``*`` to match a prefix, e.g. ``privacy.*``)."""
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000", hint="page with ?after=<id>")
        sql = f"SELECT {', '.join(_COLUMNS)} FROM audit WHERE id > ?"
        params: list[Any] = [after]
        if action:
            if action.endswith("*"):
                sql += " AND action LIKE ?"
                params.append(action[:-1].replace("%", "") + "%")
            else:
                sql += " AND action = ?"
                params.append(action)
        for name, value in (("actor", actor), ("target", target)):
            if value:
                sql += f" AND {name} = ?"
                params.append(value)
        rows = self._db.query(sql + " ORDER BY id LIMIT ?", [*params, limit])
        out = []
        for row in rows:
            item = dict(zip(_COLUMNS, row, strict=True))
            item["detail"] = orjson.loads(item["detail"])
            out.append(item)
        return out

    def close(self) -> None:
        self._db.close()
