"""The durable event log on a SQLite file (WAL, fsync on every commit).

This is the embedded mode's bus: the collector acknowledges a message only after
:meth:`SqliteEventLog.publish` has returned, i.e. after the commit reached the disk.
A retried message is never stored twice: each process that writes keeps the log's message
ids in memory (:class:`~personify.storage.sqlite.message_index.MessageIndex`), rebuilt from
the file when it opens and brought up to date inside every write transaction, so rows that
another process wrote meanwhile are seen too. (Files made before this carry a ``UNIQUE``
index on ``message_id`` as well; it stays and agrees.)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from personify.storage.ports import ERASED_ANONYMOUS_ID, LogRecord, erasure_tombstone
from personify.storage.sqlite.message_index import MessageIndex

_LOAD_CHUNK = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    offset INTEGER PRIMARY KEY,  -- assigned by publish(): an ignored duplicate uses none
    message_id TEXT NOT NULL,  -- unique, checked through the in-memory MessageIndex
    payload BLOB NOT NULL
);
"""


def connect(path: Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open a SQLite file tuned for a single-process, many-thread embedded engine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    con.execute("PRAGMA busy_timeout=30000")
    # Each batch touches hundreds of random pages of the message-id index; checkpointing
    # less often copies a page that many batches changed back to the file once, not each
    # time (measured: a third less written per message, same fsync on every commit).
    con.execute("PRAGMA wal_autocheckpoint=20000")
    return con


class SqliteEventLog:
    def __init__(self, path: Path, *, hasher: Callable[[str], int] = hash) -> None:
        self._write = connect(path)
        self._write.executescript(_SCHEMA)
        self._read = connect(path)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._cond = threading.Condition()
        self._head = self._query_head()
        # Filled on the first write (a process that only reads never needs it).
        self._index = MessageIndex(hasher)  # tests pass a colliding hasher
        self._loaded = False

    def _query_head(self) -> int:
        with self._read_lock:
            row = self._read.execute("SELECT COALESCE(MAX(offset), 0) FROM log").fetchone()
        return int(row[0])

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> int:
        if not messages:
            return 0
        with self._write_lock:
            con = self._write
            con.execute("BEGIN IMMEDIATE")
            try:
                head = self._catch_up()
                index = self._index
                hashes = index.hashes(m for m, _ in messages)
                logged = self._logged(messages, index.candidates(hashes))
                rows: list[tuple[int, str, bytes]] = []
                added: list[tuple[int, int]] = []
                batch: set[str] = set()
                for (mid, payload), h in zip(messages, hashes, strict=True):
                    if mid in logged or mid in batch:
                        continue
                    batch.add(mid)
                    head += 1
                    rows.append((head, mid, payload))
                    added.append((h, head))
                if rows:
                    con.executemany(
                        "INSERT INTO log(offset, message_id, payload) VALUES (?, ?, ?)", rows
                    )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            index.add(added)  # only once durable
        with self._cond:
            self._head = max(self._head, head)
            self._cond.notify_all()
        return len(rows)

    def _catch_up(self) -> int:
        """Index rows other processes wrote since this one last looked; the log's head.

        Called inside a write transaction (so no one else is writing), with the write lock.
        """
        con, index = self._write, self._index
        if not self._loaded:
            cur = con.execute("SELECT offset, message_id FROM log ORDER BY offset")
            index.load(iter(lambda: cur.fetchmany(_LOAD_CHUNK), []))
            self._loaded = True
        head = int(con.execute("SELECT COALESCE(MAX(offset), 0) FROM log").fetchone()[0])
        if head > index.head:
            rows = con.execute(
                "SELECT offset, message_id FROM log WHERE offset > ? ORDER BY offset",
                (index.head,),
            ).fetchall()
            index.add(zip(index.hashes(m for _, m in rows), (o for o, _ in rows), strict=True))
        return head

    def _logged(
        self, messages: Sequence[tuple[str, bytes]], candidates: list[list[int]]
    ) -> dict[str, int]:
        """The ids among ``messages`` that are in the log, with their offsets (the index
        names candidate rows; each is read to compare the id itself)."""
        offsets = sorted({o for found in candidates for o in found})
        stored: dict[int, str] = {}
        for i in range(0, len(offsets), 500):
            chunk = offsets[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            stored.update(
                self._write.execute(
                    f"SELECT offset, message_id FROM log WHERE offset IN ({marks})", chunk
                ).fetchall()
            )
        out: dict[str, int] = {}
        for (mid, _), found in zip(messages, candidates, strict=True):
            for offset in found:
                if stored.get(offset) == mid:
                    out[mid] = offset
        return out

    def read(self, after: int, limit: int) -> list[LogRecord]:
        with self._read_lock:
            rows = self._read.execute(
                "SELECT offset, message_id, payload FROM log WHERE offset > ? "
                "ORDER BY offset LIMIT ?",
                (after, limit),
            ).fetchall()
        # The columns already come back as int, str and bytes (payload is a BLOB).
        return [LogRecord(*row) for row in rows]

    def head(self) -> int:
        with self._cond:
            return self._head

    def wait(self, after: int, timeout: float) -> bool:
        """Wait for a record beyond ``after``, also noticing writes from other processes."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            # Another process's writes are only seen by asking the file: every 2 ms for the
            # first 50 ms (a busy collector; the processor should not sit idle while the
            # collector waits for it), then every 20 ms.
            poll = 0.002 if time.monotonic() - start < 0.05 else 0.02
            with self._cond:
                if self._cond.wait_for(lambda: self._head > after, min(poll, timeout)):
                    return True
            head = self._query_head()  # another process (the API) may have written
            with self._cond:
                self._head = max(self._head, head)
                if self._head > after:
                    return True
            if time.monotonic() >= deadline:
                return False

    def count(self) -> int:
        with self._read_lock:
            return int(self._read.execute("SELECT COUNT(*) FROM log").fetchone()[0])

    def redact(self, message_ids: Sequence[str]) -> int:
        return self._overwrite([(mid, erasure_tombstone(mid)) for mid in message_ids], "")

    def replace(self, payloads: Sequence[tuple[str, bytes]]) -> int:
        # an erased message stays erased (an erasure may have come in meanwhile)
        return self._overwrite(payloads, f'"anonymousId":"{ERASED_ANONYMOUS_ID}"')

    def _overwrite(self, payloads: Sequence[tuple[str, bytes]], unless: str) -> int:
        # secure_delete zeroes the bytes the old payloads leave behind in the page
        if not payloads:
            return 0
        guard = " AND instr(payload, ?) = 0" if unless else ""
        extra = (unless.encode(),) if unless else ()
        with self._write_lock:
            con = self._write
            con.execute("PRAGMA secure_delete=ON")
            con.execute("BEGIN IMMEDIATE")
            try:
                self._catch_up()
                index = self._index
                found = self._logged(
                    payloads, index.candidates(index.hashes(m for m, _ in payloads))
                )
                done = sum(
                    con.execute(
                        f"UPDATE log SET payload = ? WHERE offset = ?{guard}",
                        (payload, found[mid], *extra),
                    ).rowcount
                    for mid, payload in payloads
                    if mid in found
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return done

    def swap_payloads(self, changes: Sequence[tuple[int, bytes, bytes]]) -> int:
        if not changes:
            return 0
        with self._write_lock:
            con = self._write
            con.execute("PRAGMA secure_delete=ON")  # the replaced bytes are zeroed
            con.execute("BEGIN IMMEDIATE")
            try:
                done = sum(
                    con.execute(
                        "UPDATE log SET payload = ? WHERE offset = ? AND payload = ?",
                        (new, offset, expected),
                    ).rowcount
                    for offset, expected, new in changes
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return done

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._write.close()
            self._read.close()
