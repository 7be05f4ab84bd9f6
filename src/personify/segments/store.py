"""Where the segment engine keeps its state: memberships, their history, clause states, due times.

One SQLite file (``segments.sqlite``, WAL) in embedded mode. The engine writes a processed
batch's clause states, membership changes, due times and its log checkpoint in one
transaction, so after a crash it resumes exactly where its results end. Readers in other
processes (the API) see memberships as soon as they commit.

Tables: ``members`` (current, one row per segment and profile), ``changes`` (the internal
entered/exited event stream, with a sequence number consumers read from; each profile's
stays and each segment's size at any instant are derived from it), ``clause_state`` (per
profile and behavioural state), ``due`` (the next moment a profile's memberships may change
by time alone), ``built`` and ``checkpoints``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from personify.storage.sqlite.profiles import sqlite_engine
from personify.storage.sqlite.writer import WriterProcess

F = TypeVar("F", bound=Callable[..., Any])
metadata = MetaData()
members_t = Table(
    "members",
    metadata,
    Column("segment", String(64), primary_key=True),
    Column("profile_id", String(64), primary_key=True, index=True),
    Column("entered_at", String(40), nullable=False),
)
changes_t = Table(
    "changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("segment", String(64), nullable=False),
    Column("profile_id", String(64), nullable=False, index=True),
    Column("change", String(8), nullable=False),
    Column("at", String(40), nullable=False),
)
clause_state_t = Table(
    "clause_state",
    metadata,
    Column("profile_id", String(64), primary_key=True),
    Column("clause", String(32), primary_key=True),
    Column("state", LargeBinary, nullable=False),
)
due_t = Table(
    "due",
    metadata,
    Column("profile_id", String(64), primary_key=True),
    Column("due_at", String(40), nullable=False, index=True),
)
built_t = Table(
    "built",
    metadata,
    Column("segment", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
)
checkpoints_t = Table(
    "checkpoints",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("offset", Integer, nullable=False),
)


@dataclass
class SegmentWrite:
    """Everything one engine step changes, written atomically."""

    states: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    entered: list[tuple[str, str, str]] = field(default_factory=list)  # segment, pid, at
    exited: list[tuple[str, str, str]] = field(default_factory=list)
    due: dict[str, str | None] = field(default_factory=dict)  # pid -> due_at (None: nothing)
    built: dict[str, int | None] = field(default_factory=dict)  # segment -> version built
    clear_clauses: list[str] = field(default_factory=list)  # forget these states first
    checkpoint: int | None = None


def _working_set(method: F) -> F:
    """Run under the store's mutex (the in-memory database has one shared connection); the
    method itself waits for a batch in flight only if it must
    (:meth:`SegmentStore._before_read`)."""

    @functools.wraps(method)
    def run(self: SegmentStore, *args: Any, **kwargs: Any) -> Any:
        with self._mutex:
            return method(self, *args, **kwargs)

    return cast(F, run)


def _serialized(method: F) -> F:
    """:func:`_working_set`, after the batch a writer process may have in flight
    (:meth:`SegmentStore.in_background`): for reads and writes of the database alone."""

    @functools.wraps(method)
    def run(self: SegmentStore, *args: Any, **kwargs: Any) -> Any:
        if self._writer is not None:
            self._settled()
        return method(self, *args, **kwargs)

    return _working_set(cast(F, run))


class SegmentStore:
    """SQLite store for the segment engine (``path=None``: a private in-memory database)."""

    def __init__(self, path: Path | None) -> None:
        if path is None:
            # One shared connection, so every thread sees the same private database.
            self._engine: Engine = create_engine(
                "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            self._engine = sqlite_engine(f"sqlite:///{path}")
        self._mutex: AbstractContextManager[Any] = (
            threading.RLock() if path is None else nullcontext()
        )
        metadata.create_all(self._engine)
        # Hot single-profile reads (every profile view and decision) use a plain sqlite3
        # connection per thread: SQLAlchemy's per-statement overhead is most of their cost.
        self._path = path
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._cache: _WriteThrough | None = None
        self._writer: WriterProcess | None = None
        self._flight: set[str] | None = set()  # the profiles the batch in flight writes

    def own(self, size: int = 100_000) -> None:
        """Declare this object the only writer of the store (the segment engine does, in the
        process that runs it): per-profile clause states, memberships and due times are then
        kept in memory, written through, so a batch reads the database only for profiles not
        seen lately. Never call it where another process writes the same file."""
        if self._cache is None:
            self._cache = _WriteThrough(size)

    def in_background(self) -> None:
        """Store batches from a writer process (``personify.storage.sqlite.writer``), one in
        flight, so the processing worker goes on with the next batch meanwhile. Only with
        :meth:`own`: the working set then answers for what is in flight, and every read of
        the database waits for it. A failed write clears the working set and is raised to
        every call until :meth:`checkpoint` is read again; the processor then redoes the
        batches after the stored checkpoint."""
        if self._path is None or self._cache is None:
            raise ValueError("a writer process needs a segments file and its only writer")
        if self._writer is None:
            self._writer = WriterProcess("segments", self._path)

    def _settled(self, *, resume: bool = False) -> None:
        """Wait for the batch in flight. After a failed write, forget the working set (it
        holds what was lost) and raise, until the checkpoint is read again (``resume``):
        nothing may be decided or written on top of a lost batch, and the processor
        resumes from the stored checkpoint."""
        writer = self._writer
        assert writer is not None
        with writer.lock:
            writer.wait()
            if writer.failed and self._cache is not None:
                self._cache.clear()
            if resume:
                writer.recover()
            else:
                writer.check()

    def _before_read(self, missing: Sequence[str]) -> None:
        """Before a read of per-profile state: with a writer process, wait for the batch in
        flight only if the read goes to the database for a profile that batch writes
        (``missing``: the profiles the working set does not hold). Everything else waits
        for nothing, so the engine's next batch overlaps the writer's work: the working set
        already holds what is in flight, and the database holds the rest. The read still
        collects an answer that has already arrived, and raises a failure once one is known."""
        writer = self._writer
        if writer is None:
            return
        with writer.lock:
            writer.poll()
            if writer.in_flight and missing:
                flight = self._flight
                if flight is None or not flight.isdisjoint(missing):
                    writer.wait()
            if writer.failed and self._cache is not None:
                self._cache.clear()
            writer.check()

    def settle(self) -> None:
        """Wait until no batch is in flight; raise if a write failed (until the checkpoint
        is read again)."""
        if self._writer is not None:
            self._settled()

    # -- writes ---------------------------------------------------------------------------
    def write(self, w: SegmentWrite, name: str = "segments") -> None:
        encoded = {key: orjson.dumps(s) for key, s in w.states.items()}
        writer = self._writer
        if writer is None:
            with self._mutex:
                self.write_encoded(w, name, encoded)
                if self._cache is not None:  # only once committed
                    self._cache.written(w, encoded)
            return
        self._settled()
        with writer.lock:
            # the states travel once, serialized (``write_encoded`` reads only ``encoded``)
            writer.submit((dataclasses.replace(w, states={}), name, encoded))
            # The working set answers for the batch in flight; cleared if it fails.
            if self._cache is not None:
                self._cache.written(w, encoded)
            # Reads of other profiles need not wait for it (None: it touches every profile).
            self._flight = None if w.clear_clauses else _profiles_in(w, encoded)

    def write_encoded(
        self, w: SegmentWrite, name: str, encoded: dict[tuple[str, str], bytes]
    ) -> None:
        """Store one step's changes (states already serialized) in one transaction."""
        with self._engine.begin() as con:
            if w.clear_clauses:
                con.exec_driver_sql(
                    "DELETE FROM clause_state WHERE clause = ?", [(c,) for c in w.clear_clauses]
                )
            if encoded:
                con.exec_driver_sql(
                    "INSERT INTO clause_state (profile_id, clause, state) VALUES (?, ?, ?) "
                    "ON CONFLICT (profile_id, clause) DO UPDATE SET state = excluded.state",
                    [(pid, cid, state) for (pid, cid), state in encoded.items()],
                )
            if w.entered:
                con.exec_driver_sql(
                    "INSERT OR IGNORE INTO members (segment, profile_id, entered_at) "
                    "VALUES (?, ?, ?)",
                    w.entered,
                )
            if w.exited:
                con.exec_driver_sql(
                    "DELETE FROM members WHERE segment = ? AND profile_id = ?",
                    [(s, p) for s, p, _ in w.exited],
                )
            changes = [(s, p, "entered", at) for s, p, at in w.entered]
            changes += [(s, p, "exited", at) for s, p, at in w.exited]
            if changes:
                con.exec_driver_sql(
                    "INSERT INTO changes (segment, profile_id, change, at) VALUES (?, ?, ?, ?)",
                    changes,
                )
            if w.due:
                gone = [(pid,) for pid, at in w.due.items() if at is None]
                if gone:
                    con.exec_driver_sql("DELETE FROM due WHERE profile_id = ?", gone)
                due = [(pid, at) for pid, at in w.due.items() if at is not None]
                if due:
                    con.exec_driver_sql(
                        "INSERT INTO due (profile_id, due_at) VALUES (?, ?) "
                        "ON CONFLICT (profile_id) DO UPDATE SET due_at = excluded.due_at",
                        due,
                    )
            for segment, version in w.built.items():
                if version is None:
                    con.exec_driver_sql("DELETE FROM built WHERE segment = ?", (segment,))
                else:
                    con.exec_driver_sql(
                        "INSERT INTO built (segment, version) VALUES (?, ?) "
                        "ON CONFLICT (segment) DO UPDATE SET version = excluded.version",
                        (segment, version),
                    )
            if w.checkpoint is not None:
                con.exec_driver_sql(
                    'INSERT INTO checkpoints (name, "offset") VALUES (?, ?) '
                    'ON CONFLICT (name) DO UPDATE SET "offset" = excluded."offset"',
                    (name, w.checkpoint),
                )

    @_serialized
    def reset(self, segments: Iterable[str] | None = None, *, clauses: bool = False) -> None:
        """Forget current members (of some segments, or all) and optionally all clause states.

        History rows stay (closed by the caller through exits when it means them to).
        """
        if self._cache is not None:
            self._cache.clear()
        with self._engine.begin() as con:
            if segments is None:
                con.exec_driver_sql("DELETE FROM members")
            else:
                con.exec_driver_sql(
                    "DELETE FROM members WHERE segment = ?", [(s,) for s in segments]
                )
            if clauses:
                con.exec_driver_sql("DELETE FROM clause_state")
                con.exec_driver_sql("DELETE FROM due")

    @_serialized
    def delete_profiles(self, profile_ids: Sequence[str]) -> int:
        """Erase every trace of these profiles (privacy erasure)."""
        rows = [(pid,) for pid in profile_ids]
        removed = 0
        if self._cache is not None:
            self._cache.forget(profile_ids)
        with self._engine.begin() as con:
            for table in ("members", "changes", "clause_state", "due"):
                removed += con.exec_driver_sql(
                    f"DELETE FROM {table} WHERE profile_id = ?", rows
                ).rowcount
        return removed

    # -- reads ----------------------------------------------------------------------------
    @_serialized
    def built(self) -> dict[str, int]:
        """The definition version each segment's memberships were last built from."""
        with self._engine.connect() as con:
            return {s: int(v) for s, v in con.exec_driver_sql("SELECT segment, version FROM built")}

    def checkpoint(self, name: str = "segments") -> int:
        """The stored checkpoint; reading it is resuming from it (a failed background write
        is forgotten, the working set was cleared when it showed)."""
        if self._writer is not None:
            self._settled(resume=True)
        with self._mutex, self._engine.connect() as con:
            value = con.exec_driver_sql(
                'SELECT "offset" FROM checkpoints WHERE name = ?', (name,)
            ).scalar()
        return int(value or 0)

    @_working_set
    def states(
        self, profile_ids: Sequence[str], clause_ids: Sequence[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        out: dict[tuple[str, str], dict[str, Any]] = {}
        if not profile_ids or not clause_ids:
            return out
        wanted = set(clause_ids)
        loads = orjson.loads
        for pid, mine in self.encoded_states(profile_ids).items():
            for cid, state in mine.items():
                if cid in wanted:
                    out[(pid, cid)] = loads(state)
        return out

    @_working_set
    def encoded_states(self, profile_ids: Sequence[str]) -> dict[str, Mapping[str, bytes]]:
        """Each profile's clause states as stored (JSON), ``{pid: {state id: bytes}}``;
        profiles with none may be missing. The engine decodes only the states it reads.
        With :meth:`own` the inner mappings are the working set's: never change them."""
        cache = self._cache
        if cache is None:
            return dict(self._load_states(profile_ids))
        known, missing = cache.split(cache.states, profile_ids)
        self._before_read(missing)
        if missing:
            loaded = self._load_states(missing)
            cache.fill(cache.states, missing, loaded, dict)
            known.update(loaded)
        return known

    def _load_states(self, profile_ids: Sequence[str]) -> dict[str, dict[str, bytes]]:
        out: dict[str, dict[str, bytes]] = {}
        with self._engine.connect() as con:
            for chunk in _chunks(list(profile_ids), 500):
                marks = ", ".join("?" * len(chunk))
                for pid, cid, state in con.exec_driver_sql(
                    f"SELECT profile_id, clause, state FROM clause_state "
                    f"WHERE profile_id IN ({marks})",
                    tuple(chunk),
                ).fetchall():
                    out.setdefault(pid, {})[cid] = bytes(state)
        return out

    def _reader(self) -> sqlite3.Connection | None:
        if self._path is None:
            return None
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
            self._local.con = con
            with self._mutex:
                self._readers.append(con)
        return con

    def memberships_of(self, profile_id: str) -> dict[str, str]:
        """One profile's current segments ``{segment: entered_at}`` (the hot path)."""
        if self._writer is not None:
            self._settled()
        con = self._reader()
        if con is None:
            return self.memberships([profile_id])[profile_id]
        rows = con.execute(
            "SELECT segment, entered_at FROM members WHERE profile_id = ?", (profile_id,)
        ).fetchall()
        return dict(rows)

    @_working_set
    def memberships(self, profile_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Current segments per profile: ``{pid: {segment: entered_at}}``."""
        cache = self._cache
        if cache is None:
            return self._load_memberships(profile_ids)
        known, missing = cache.split(cache.members, profile_ids)
        self._before_read(missing)
        if missing:
            loaded = self._load_memberships(missing)
            cache.fill(cache.members, missing, loaded, dict)
            known.update(loaded)
        return {pid: dict(known[pid]) for pid in profile_ids}

    def _load_memberships(self, profile_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {pid: {} for pid in profile_ids}
        with self._engine.connect() as con:
            for chunk in _chunks(list(profile_ids), 500):
                marks = ", ".join("?" * len(chunk))
                for seg, pid, at in con.exec_driver_sql(
                    f"SELECT segment, profile_id, entered_at FROM members "
                    f"WHERE profile_id IN ({marks})",
                    tuple(chunk),
                ).fetchall():
                    out[pid][seg] = at
        return out

    @_working_set
    def dues(self, profile_ids: Sequence[str]) -> dict[str, str]:
        cache = self._cache
        if cache is None:
            return self._load_dues(profile_ids)
        known, missing = cache.split(cache.dues, profile_ids)
        self._before_read(missing)
        if missing:
            loaded = self._load_dues(missing)
            cache.fill(cache.dues, missing, loaded, lambda: None)
            known.update(loaded)
        return {pid: at for pid, at in known.items() if at is not None}

    def _load_dues(self, profile_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self._engine.connect() as con:
            for chunk in _chunks(list(profile_ids), 500):
                marks = ", ".join("?" * len(chunk))
                for pid, at in con.exec_driver_sql(
                    f"SELECT profile_id, due_at FROM due WHERE profile_id IN ({marks})",
                    tuple(chunk),
                ).fetchall():
                    out[pid] = at
        return out

    @_serialized
    def due_before(self, at: str, limit: int = 5000) -> list[str]:
        with self._engine.connect() as con:
            rows = con.exec_driver_sql(
                "SELECT profile_id FROM due WHERE due_at <= ? ORDER BY due_at LIMIT ?", (at, limit)
            )
            return [r[0] for r in rows]

    @_serialized
    def members(
        self, segment: str, limit: int | None = 100, offset: int = 0
    ) -> list[dict[str, str]]:
        sql = "SELECT profile_id, entered_at FROM members WHERE segment = ? ORDER BY profile_id"
        params: tuple[Any, ...] = (segment,)
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += (limit, offset)
        with self._engine.connect() as con:
            return [
                {"profile_id": p, "entered_at": at} for p, at in con.exec_driver_sql(sql, params)
            ]

    @_serialized
    def sizes(self) -> dict[str, int]:
        with self._engine.connect() as con:
            rows = con.exec_driver_sql("SELECT segment, count(*) FROM members GROUP BY segment")
            return {seg: int(n) for seg, n in rows}

    @_serialized
    def size_over_time(self, segment: str, points: Sequence[str]) -> list[dict[str, Any]]:
        """Members at each instant, from the entered/exited stream (exact, no snapshots)."""
        out = []
        with self._engine.connect() as con:
            for at in points:
                n = con.exec_driver_sql(
                    "SELECT coalesce(sum(CASE change WHEN 'entered' THEN 1 ELSE -1 END), 0) "
                    "FROM changes WHERE segment = ? AND at <= ?",
                    (segment, at),
                ).scalar()
                out.append({"at": at, "size": int(n or 0)})
        return out

    @_serialized
    def first_entry(self, segment: str) -> str | None:
        with self._engine.connect() as con:
            value = con.exec_driver_sql(
                "SELECT min(at) FROM changes WHERE segment = ?", (segment,)
            ).scalar()
        return str(value) if value else None

    @_serialized
    def history(self, profile_id: str) -> list[dict[str, Any]]:
        """Each stay of a profile in a segment: ``entered_at`` and ``exited_at`` (or None)."""
        with self._engine.connect() as con:
            rows = con.exec_driver_sql(
                "SELECT segment, change, at FROM changes WHERE profile_id = ? ORDER BY seq",
                (profile_id,),
            ).fetchall()
        stays: list[dict[str, Any]] = []
        open_stay: dict[str, dict[str, Any]] = {}
        for segment, change, at in rows:
            if change == "entered":
                open_stay[segment] = {"segment": segment, "entered_at": at, "exited_at": None}
                stays.append(open_stay[segment])
            elif segment in open_stay:
                open_stay.pop(segment)["exited_at"] = at
        return stays

    @_serialized
    def changes(self, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The internal ``Segment Entered`` / ``Segment Exited`` stream, from sequence ``after``."""
        with self._engine.connect() as con:
            rows = con.execute(
                text(
                    "SELECT seq, segment, profile_id, change, at FROM changes WHERE seq > :a "
                    "ORDER BY seq LIMIT :n"
                ),
                {"a": after, "n": limit},
            )
            return [
                {"seq": q, "segment": s, "profile_id": p, "change": c, "at": at}
                for q, s, p, c, at in rows
            ]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        for con in self._readers:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed from its own thread
                con.close()
        self._readers.clear()
        self._engine.dispose()


class _WriteThrough:
    """The engine's working set of per-profile state, each entry complete for its profile:
    clause states (serialized, so callers get fresh copies), memberships and due times
    (None: no row). Updated once a write commits, or, with a writer process, once the batch
    is handed to it (the working set then answers for the batch in flight, and is cleared
    if that write fails); oldest profiles are evicted."""

    def __init__(self, size: int) -> None:
        self.size = max(size, 100)
        self.states: dict[str, dict[str, bytes]] = {}
        self.members: dict[str, dict[str, str]] = {}
        self.dues: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def split(
        self, table: dict[str, Any], profile_ids: Sequence[str]
    ) -> tuple[dict[str, Any], list[str]]:
        with self._lock:
            known = {pid: table[pid] for pid in profile_ids if pid in table}
        return known, [pid for pid in profile_ids if pid not in known]

    def fill(
        self,
        table: dict[str, Any],
        profile_ids: Sequence[str],
        loaded: dict[str, Any],
        empty: Callable[[], Any],
    ) -> None:
        with self._lock:
            for pid in profile_ids:
                table[pid] = loaded[pid] if pid in loaded else empty()
            if len(table) > self.size:  # down to 90% of the size, oldest first
                for old in list(table)[: len(table) - self.size + self.size // 10]:
                    del table[old]

    def written(self, w: SegmentWrite, encoded: dict[tuple[str, str], bytes]) -> None:
        with self._lock:
            if w.clear_clauses:
                gone = set(w.clear_clauses)
                for mine in self.states.values():
                    for cid in gone & mine.keys():
                        del mine[cid]
            for (pid, cid), state in encoded.items():
                if pid in self.states:
                    self.states[pid][cid] = state
            for segment, pid, at in w.entered:
                if pid in self.members:
                    self.members[pid].setdefault(segment, at)
            for segment, pid, _ in w.exited:
                if pid in self.members:
                    self.members[pid].pop(segment, None)
            for pid, due in w.due.items():
                if pid in self.dues:
                    self.dues[pid] = due

    def forget(self, profile_ids: Iterable[str]) -> None:
        with self._lock:
            for pid in profile_ids:
                for table in (self.states, self.members, self.dues):
                    table.pop(pid, None)

    def clear(self) -> None:
        with self._lock:
            self.states.clear()
            self.members.clear()
            self.dues.clear()


def _profiles_in(w: SegmentWrite, encoded: Mapping[tuple[str, str], bytes]) -> set[str]:
    """The profiles whose rows a write changes."""
    touched = {pid for pid, _ in encoded}
    touched.update(pid for _, pid, _ in w.entered)
    touched.update(pid for _, pid, _ in w.exited)
    touched.update(w.due)
    return touched


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
