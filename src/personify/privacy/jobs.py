"""Privacy jobs (export, erase, key rotation): status and a summary, readable by id.

The subject is stored as a pseudonym and the summary holds counts only, so the job table
never keeps the person's data. An export's full result is kept in memory for the life of
the process (the API answers it at once and ``GET /v1/privacy/jobs/{id}`` can read it
again); after a restart the summary remains.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from personify.errors import NotFound
from personify.privacy.db import Db

KINDS = ("export", "erase", "rotate")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    summary TEXT NOT NULL,
    error TEXT
);
"""
_COLUMNS = ("job_id", "kind", "status", "subject", "created_at", "finished_at", "summary", "error")
_KEPT_EXPORTS = 100


class JobStore:
    def __init__(self, path: Path | None) -> None:
        self._db = Db(path, _SCHEMA)
        self._exports: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, kind: str, subject: str) -> str:
        job_id = f"{kind}_{secrets.token_hex(8)}"
        with self._db.tx() as con:
            con.execute(
                "INSERT INTO jobs (job_id, kind, status, subject, created_at, summary) "
                "VALUES (?, ?, 'running', ?, ?, '{}')",
                (job_id, kind, subject, datetime.now(UTC).isoformat()),
            )
        return job_id

    def progress(self, job_id: str, summary: Mapping[str, Any]) -> None:
        """Record how far a running job got (a key rotation reports each store it passed)."""
        with self._db.tx() as con:
            con.execute(
                "UPDATE jobs SET summary = ? WHERE job_id = ? AND status = 'running'",
                (orjson.dumps(dict(summary)).decode(), job_id),
            )

    def finish(
        self,
        job_id: str,
        summary: Mapping[str, Any],
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        with self._db.tx() as con:
            con.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, summary = ?, error = ? "
                "WHERE job_id = ?",
                (
                    "failed" if error else "completed",
                    datetime.now(UTC).isoformat(),
                    orjson.dumps(dict(summary)).decode(),
                    error,
                    job_id,
                ),
            )
        if result is not None:
            with self._lock:
                self._exports[job_id] = result
                while len(self._exports) > _KEPT_EXPORTS:
                    self._exports.popitem(last=False)

    def get(self, job_id: str) -> dict[str, Any]:
        rows = self._db.query(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,))
        if not rows:
            raise NotFound(
                f"no privacy job {job_id!r}",
                hint="use the job_id returned by POST /v1/privacy/export, /erase or /keys/rotate",
            )
        job = dict(zip(_COLUMNS, rows[0], strict=True))
        job["summary"] = orjson.loads(job["summary"])
        with self._lock:
            if job_id in self._exports:
                job["result"] = self._exports[job_id]
        return job

    def close(self) -> None:
        self._db.close()
