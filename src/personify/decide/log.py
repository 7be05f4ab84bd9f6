"""The decision log (``decisions.sqlite``): every decision, and the rewards that came back.

A decision row records who (profile, unit), what (placement, content, variant), why (policy,
propensity, reasons) and when, with the request context. Rewards are events carrying
``properties.decision_id`` (``Content Viewed``, ``Content Clicked``, ``Order Completed`` with
revenue), stored once per ``messageId``; ``Content Dismissed`` events become dismissals.

Decisions are written by the API process in small batches (a background flush every
``flush_interval`` seconds), so deciding never waits on the disk; a crash can lose the last
fraction of a second of decision rows, never an acknowledged event. Rewards are written by the
event processor (another process in ``personify serve``); SQLite WAL lets both write.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import orjson

from personify.storage.sqlite.log import connect

VIEWED: Final = "Content Viewed"
CLICKED: Final = "Content Clicked"
CONVERTED: Final = "Order Completed"
DISMISSED: Final = "Content Dismissed"
REWARD_EVENTS: Final = (VIEWED, CLICKED, CONVERTED)
DECISION_ID: Final = re.compile(r"d_[0-9a-f]{32}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    at_s REAL NOT NULL,
    profile_id TEXT,
    unit TEXT,
    placement TEXT NOT NULL,
    content TEXT,
    variant TEXT,
    policy TEXT NOT NULL,
    propensity REAL NOT NULL,
    reasons TEXT NOT NULL,
    context TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_at ON decisions(at_s);
CREATE INDEX IF NOT EXISTS decisions_content ON decisions(placement, content);
CREATE TABLE IF NOT EXISTS rewards (
    message_id TEXT PRIMARY KEY,
    decision_id TEXT NOT NULL,
    event TEXT NOT NULL,
    value REAL NOT NULL,
    profile_id TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rewards_decision ON rewards(decision_id);
CREATE TABLE IF NOT EXISTS checkpoints (
    name TEXT PRIMARY KEY,
    offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dismissals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    unit TEXT NOT NULL,
    content TEXT NOT NULL,
    decision_id TEXT,
    at TEXT NOT NULL
);
"""
_DECISION_COLUMNS: Final = (
    "decision_id",
    "at",
    "at_s",
    "profile_id",
    "unit",
    "placement",
    "content",
    "variant",
    "policy",
    "propensity",
    "reasons",
    "context",
)


_ROWS_PER_INSERT: Final = 100  # 1,200 parameters per statement


@lru_cache(maxsize=_ROWS_PER_INSERT)
def _insert_sql(rows: int) -> str:
    """``INSERT OR IGNORE INTO decisions ... VALUES (...), (...)`` for ``rows`` rows."""
    one = "(" + ", ".join("?" * len(_DECISION_COLUMNS)) + ")"
    columns = ", ".join(_DECISION_COLUMNS)
    return f"INSERT OR IGNORE INTO decisions ({columns}) VALUES " + ", ".join([one] * rows)


@dataclass(frozen=True)
class LoggedDecision:
    """One decision as the log stores it (``reasons`` and ``context`` as JSON-ready data)."""

    decision_id: str
    at: str
    at_s: float
    profile_id: str | None
    unit: str | None
    placement: str
    content: str | None
    variant: str | None
    policy: str
    propensity: float
    reasons: list[dict[str, Any]]
    context: dict[str, Any]

    def row(self) -> tuple[Any, ...]:
        return (
            self.decision_id,
            self.at,
            self.at_s,
            self.profile_id,
            self.unit,
            self.placement,
            self.content,
            self.variant,
            self.policy,
            self.propensity,
            orjson.dumps(self.reasons).decode(),
            orjson.dumps(self.context).decode(),
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> LoggedDecision:
        values = dict(zip(_DECISION_COLUMNS, row, strict=True))
        values["reasons"] = orjson.loads(values["reasons"])
        values["context"] = orjson.loads(values["context"])
        return cls(**values)


@dataclass(frozen=True)
class Reward:
    message_id: str
    decision_id: str
    event: str
    value: float
    profile_id: str | None
    at: str


@dataclass(frozen=True)
class Dismissal:
    message_id: str
    unit: str
    content: str
    decision_id: str | None
    at: str


class DecisionLog:
    """Decisions, rewards and dismissals on one SQLite file (WAL)."""

    def __init__(self, path: Path | None, *, flush_interval: float = 0.2) -> None:
        # ``None``: an in-memory database (the ``memory`` backend and unit tests)
        self._con = (
            connect(path, synchronous="NORMAL")
            if path is not None
            else sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        )
        self._con.executescript(_SCHEMA)
        self._lock = threading.Lock()
        # The decision path polls dismissals on a connection of its own, so it never waits
        # for a flush to commit (WAL lets it read meanwhile); in memory there is one database.
        if path is not None:
            self._poll_con, self._poll_lock = connect(path, synchronous="NORMAL"), threading.Lock()
        else:
            self._poll_con, self._poll_lock = self._con, self._lock
        self._buffer: list[tuple[Any, ...]] = []
        self._buffer_lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._interval = flush_interval

    # -- decisions --------------------------------------------------------------------------
    def record(self, decision: LoggedDecision) -> None:
        """Queue one decision; it is written within ``flush_interval`` (or by :meth:`flush`)."""
        with self._buffer_lock:
            self._buffer.append(decision.row())
            start = self._flusher is None
        if start:
            self._start_flusher()

    def _start_flusher(self) -> None:
        with self._buffer_lock:
            if self._flusher is not None or self._stop.is_set():
                return
            self._flusher = threading.Thread(
                target=self._flush_loop, name="personify-decision-log", daemon=True
            )
            self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> int:
        """Write queued decisions now; returns how many were written."""
        with self._buffer_lock:
            rows, self._buffer = self._buffer, []
        if not rows:
            return 0
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                # Many rows per statement: sqlite3 lets go of the GIL around every statement
                # it runs, and this thread then has to take it back from the one deciding;
                # row by row (``executemany``) that handover costs the decisions more than
                # the inserts themselves.
                for i in range(0, len(rows), _ROWS_PER_INSERT):
                    chunk = rows[i : i + _ROWS_PER_INSERT]
                    self._con.execute(_insert_sql(len(chunk)), [v for row in chunk for v in row])
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        return len(rows)

    def get(self, decision_id: str) -> LoggedDecision | None:
        self.flush()
        with self._lock:
            row = self._con.execute(
                f"SELECT {', '.join(_DECISION_COLUMNS)} FROM decisions WHERE decision_id = ?",
                (decision_id,),
            ).fetchone()
        return LoggedDecision.from_row(row) if row else None

    def units_of(self, decision_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """``decision_id -> (unit, content)`` for the ids that are logged."""
        out: dict[str, tuple[str | None, str | None]] = {}
        with self._lock:
            for i in range(0, len(decision_ids), 500):
                chunk = list(decision_ids[i : i + 500])
                rows = self._con.execute(
                    "SELECT decision_id, unit, content FROM decisions WHERE decision_id IN "
                    f"({', '.join('?' * len(chunk))})",
                    chunk,
                )
                for did, unit, content in rows:
                    out[did] = (unit, content)
        return out

    def impressions_since(self, at_s: float) -> Iterator[tuple[str, str, str, float]]:
        """``(unit, placement, content, at_s)`` of served decisions, oldest first (for caps)."""
        self.flush()
        with self._lock:
            rows = self._con.execute(
                "SELECT unit, placement, content, at_s FROM decisions WHERE at_s >= ? AND "
                "unit IS NOT NULL AND content IS NOT NULL ORDER BY at_s",
                (at_s,),
            ).fetchall()
        yield from rows

    # -- rewards and dismissals ---------------------------------------------------------------
    def checkpoint(self, name: str) -> int:
        """The event-log offset up to which observer ``name`` has stored its results."""
        with self._lock:
            row = self._con.execute(
                "SELECT offset FROM checkpoints WHERE name = ?", (name,)
            ).fetchone()
        return int(row[0]) if row else 0

    def add_rewards(
        self,
        rewards: Sequence[Reward],
        dismissals: Sequence[Dismissal],
        checkpoint: tuple[str, int] | None = None,
    ) -> int:
        """Store rewards and dismissals, each ``message_id`` once, and (in the same
        transaction) an observer's checkpoint. Returns how many rows were new."""
        with self._lock:
            before = self._con.total_changes
            self._con.execute("BEGIN IMMEDIATE")
            try:
                self._con.executemany(
                    "INSERT OR IGNORE INTO rewards (message_id, decision_id, event, value, "
                    "profile_id, at) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (r.message_id, r.decision_id, r.event, r.value, r.profile_id, r.at)
                        for r in rewards
                    ],
                )
                self._con.executemany(
                    "INSERT OR IGNORE INTO dismissals (message_id, unit, content, decision_id, "
                    "at) VALUES (?, ?, ?, ?, ?)",
                    [(d.message_id, d.unit, d.content, d.decision_id, d.at) for d in dismissals],
                )
                if checkpoint is not None:
                    self._con.execute(
                        "INSERT INTO checkpoints (name, offset) VALUES (?, ?) ON CONFLICT(name) "
                        "DO UPDATE SET offset = MAX(offset, excluded.offset)",
                        checkpoint,
                    )
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            return self._con.total_changes - before - (checkpoint is not None)

    def dismissals_since(self, token: int) -> tuple[list[tuple[str, str]], int]:
        """``(unit, content)`` dismissed after ``token``, and the next token (cheap to poll)."""
        with self._poll_lock:
            rows = self._poll_con.execute(
                "SELECT seq, unit, content FROM dismissals WHERE seq > ? ORDER BY seq", (token,)
            ).fetchall()
        if not rows:
            return [], token
        return [(unit, content) for _, unit, content in rows], int(rows[-1][0])

    # -- reading results ------------------------------------------------------------------------
    def report(
        self, placement: str | None = None, since: str | None = None
    ) -> list[dict[str, Any]]:
        """Per placement and content: impressions (served), views, clicks, conversions, revenue.

        Views and clicks count decisions with at least one such event (so CTR is at most 1);
        conversions count orders attributed to the decision and revenue sums them.
        """
        self.flush()
        where, params = ["d.content IS NOT NULL"], []
        if placement is not None:
            where.append("d.placement = ?")
            params.append(placement)
        if since is not None:
            where.append("d.at >= ?")
            params.append(since)
        sql = f"""
            WITH r AS (
                SELECT decision_id,
                       MAX(event = '{VIEWED}') AS viewed,
                       MAX(event = '{CLICKED}') AS clicked,
                       SUM(event = '{CONVERTED}') AS orders,
                       SUM(CASE WHEN event = '{CONVERTED}' THEN value ELSE 0 END) AS revenue
                FROM rewards GROUP BY decision_id)
            SELECT d.placement, d.content, COUNT(*), COALESCE(SUM(r.viewed), 0),
                   COALESCE(SUM(r.clicked), 0), COALESCE(SUM(r.orders), 0),
                   COALESCE(SUM(r.revenue), 0.0)
            FROM decisions d LEFT JOIN r ON r.decision_id = d.decision_id
            WHERE {" AND ".join(where)}
            GROUP BY d.placement, d.content
            ORDER BY d.placement, COUNT(*) DESC, d.content"""
        with self._lock:
            rows = self._con.execute(sql, params).fetchall()
        out = []
        for place, content, shown, views, clicks, orders, revenue in rows:
            out.append(
                {
                    "placement": place,
                    "content": content,
                    "impressions": shown,
                    "views": views,
                    "clicks": clicks,
                    "conversions": orders,
                    "revenue": round(revenue, 2),
                    "ctr": round(clicks / shown, 4) if shown else 0.0,
                    "conversion_rate": round(orders / shown, 4) if shown else 0.0,
                }
            )
        return out

    def outcomes(self, policy: str | None = None, limit: int = 100_000) -> list[dict[str, Any]]:
        """Logged decisions with their rewards, for policy learning and off-policy evaluation."""
        self.flush()
        sql = """
            SELECT d.decision_id, d.placement, d.content, d.variant, d.policy, d.propensity,
                   d.context, d.unit,
                   COALESCE(MAX(r.event = 'Content Clicked'), 0),
                   COALESCE(SUM(r.event = 'Order Completed'), 0),
                   COALESCE(SUM(CASE WHEN r.event = 'Order Completed' THEN r.value END), 0.0)
            FROM decisions d LEFT JOIN rewards r ON r.decision_id = d.decision_id
            WHERE (? IS NULL OR d.policy = ?)
            GROUP BY d.decision_id ORDER BY d.at_s LIMIT ?"""
        with self._lock:
            rows = self._con.execute(sql, (policy, policy, limit)).fetchall()
        keys = (
            "decision_id",
            "placement",
            "content",
            "variant",
            "policy",
            "propensity",
            "context",
            "unit",
            "clicked",
            "conversions",
            "revenue",
        )
        out = [dict(zip(keys, row, strict=True)) for row in rows]
        for item in out:
            item["context"] = orjson.loads(item["context"])
        return out

    def close(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        self.flush()
        with self._lock:
            self._con.close()
        if self._poll_con is not self._con:
            with self._poll_lock:
                self._poll_con.close()
