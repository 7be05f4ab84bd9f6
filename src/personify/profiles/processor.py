"""The processor: consumes the durable log and keeps profiles and the event store current.

For each batch of log records it resolves identities, updates traits and computed traits,
assigns sessions, enriches the events, then writes the event rows and the profile changes,
each store in one transaction together with the offset it reached. Events are written first;
because profile ids are derived from message ids, replaying a batch after a
crash between the two writes gives the same ids, so nothing is applied twice.
(Session ids hash the profile id and the session's first timestamp: also deterministic.)
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import orjson

from personify.clock import Clock
from personify.config import ProfileSettings
from personify.events.enrich import event_fields
from personify.identity.resolver import Resolver
from personify.profiles.records import (
    ORDER_COMPLETED,
    ORDER_REFUNDED,
    apply_event,
    lifecycle_stage,
    parse_iso,
)
from personify.storage.ports import EventLog, EventStore, LogRecord, ProfileStore

log = logging.getLogger(__name__)


class Observed(NamedTuple):
    """One processed message, as observers downstream of profiles see it.

    A named tuple rather than a frozen dataclass: one is built per message per batch, and a
    tuple is several times cheaper to construct.
    """

    offset: int
    message: Mapping[str, Any]
    profile_id: str
    # Whether the profile may have absorbed another in this batch (True when unknown, e.g.
    # when replaying after a crash): then anything about it may have changed.
    merged: bool = True


class Observer(Protocol):
    """A consumer of processed events that keeps its own derived state (segments, rewards).

    Observers run after the event and profile stores are written. Each keeps its own
    checkpoint and stores it in the same transaction as its results, so after a crash it is
    given again exactly the messages it has not stored yet.
    """

    name: str

    def checkpoint(self) -> int: ...

    def observe(
        self,
        events: Sequence[Observed],
        profiles: Mapping[str, dict[str, Any]],
        checkpoint: int,
    ) -> None:
        """Handle ``events`` (profiles: their current documents) and store ``checkpoint``."""
        ...


class Minimizer(Protocol):
    """Data minimization for people who refuse analytics (``personify.privacy.Privacy``)."""

    def refusing_analytics(
        self, docs: Mapping[str, Mapping[str, Any]], messages: Iterable[tuple[str, Any]]
    ) -> set[str]: ...

    def minimize(self, msg: dict[str, Any]) -> None: ...


class Processing(Protocol):
    """What the engine needs from processing, in a thread here or in a worker process."""

    last_error: str | None

    @property
    def running(self) -> bool: ...

    @property
    def position(self) -> int: ...

    def lag(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def step(self) -> int: ...

    def drain(self, timeout: float = 600.0) -> None: ...

    def forget(self, profile_ids: Sequence[str]) -> None: ...


class Processor:
    def __init__(
        self,
        event_log: EventLog,
        profiles: ProfileStore,
        events: EventStore,
        resolver: Resolver,
        settings: ProfileSettings,
        clock: Clock,
        on_change: Callable[[set[str]], None] | None = None,
        batch_size: int = 10_000,
        batch_seconds: float = 0.25,
        observers: Sequence[Observer] = (),
        minimizer: Minimizer | None = None,
    ) -> None:
        self._log = event_log
        self._profiles = profiles
        self._events = events
        self._resolver = resolver
        self._settings = settings
        self._clock = clock
        self._on_change = on_change
        self._observers = list(observers)
        self._minimizer = minimizer
        # Batches are sized by time, not count: about ``batch_seconds`` of work each, so a
        # slower machine makes smaller batches and profiles stay fresh.
        self._max_batch = batch_size
        self._batch_seconds = batch_seconds
        self._batch_size = min(1000, batch_size)
        self._timeout = timedelta(minutes=settings.session_timeout_minutes)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0
        self.minimized = 0  # events stored minimized (analytics refused by their person)
        self.last_error: str | None = None
        self._load_checkpoints()

    def _load_checkpoints(self) -> None:
        self._pcp = self._profiles.checkpoint()
        self._ecp = self._events.checkpoint()
        self._ocp = [o.checkpoint() for o in self._observers]

    @property
    def position(self) -> int:
        """The offset up to which the stores and every observer are current."""
        return min(self._pcp, self._ecp, *self._ocp)

    def add_observer(self, observer: Observer) -> None:
        """Attach an observer (before processing starts); it catches up from its checkpoint."""
        with self._lock:
            self._observers.append(observer)
            self._ocp.append(observer.checkpoint())

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def lock(self) -> threading.Lock:
        """Held while a batch is processed (observers' schedulers take it to stay in step)."""
        return self._lock

    def lag(self) -> int:
        return max(self._log.head() - self.position, 0)

    def status(self) -> dict[str, Any]:
        """What the API reports about processing run elsewhere (the worker): the last step's
        error, and the offset up to which the stores *and every observer* are current (a
        failing observer holds this back while the profile checkpoint moves on)."""
        return {"error": self.last_error, "position": self.position}

    # -- one step ---------------------------------------------------------------------------
    def step(self) -> int:
        """Process the next batch of records; return how many were processed."""
        with self._lock:
            records = self._log.read(self.position, self._batch_size)
            started = time.perf_counter()
            try:
                if not records:
                    self._settle()  # idle: a failed background write shows now
                    return 0
                self._process(records)
            except Exception:
                self._resolver.reset()
                self._load_checkpoints()
                raise
            per_record = (time.perf_counter() - started) / len(records)
            if len(records) >= self._batch_size // 2:
                target = int(self._batch_seconds / max(per_record, 1e-6))
                self._batch_size = max(200, min(self._max_batch, target))
            return len(records)

    def _process(self, records: list[LogRecord]) -> None:
        # The hot loop (ingestion aims at 20,000 messages a second): it binds what it calls
        # to locals and reads the clock once per batch.
        resolver = self._resolver
        loads = orjson.loads
        messages = [loads(r.payload) for r in records]
        keys_of = resolver.keys_of
        keys = [keys_of(m) for m in messages]
        pcp, ecp = self._pcp, self._ecp
        resolver.prefetch(
            (m, k) for r, m, k in zip(records, messages, keys, strict=True) if r.offset > pcp
        )
        now = self._clock.now()
        kept: list[tuple[dict[str, Any], str, str | None, bytes]] = []
        touched: set[str] = set()
        observed: list[tuple[int, Mapping[str, Any], str]] = []
        oldest_observer = min(self._ocp, default=records[-1].offset)
        resolve, update, row = resolver.resolve, self._update_profile, self._row
        for rec, msg, msg_keys in zip(records, messages, keys, strict=True):
            at: str = msg["timestamp"]
            session_id: str | None = None
            offset = rec.offset
            if offset > pcp:
                pid = resolve(msg, at, msg_keys)
                session_id = update(pid, msg, at, now)
                touched.add(pid)
            else:
                pid = resolver.resolve_readonly(msg) or "unresolved"
            if offset > ecp:
                kept.append((msg, pid, session_id, rec.payload))
            if offset > oldest_observer:
                observed.append((offset, msg, pid))
        rewritten: list[tuple[str, bytes]] = []
        if kept and self._minimizer is not None:
            kept, rewritten = self._minimize(kept)
        rows = [row(msg, pid, session_id, payload) for msg, pid, session_id, payload in kept]
        last = records[-1].offset
        if last > ecp:
            self._events.append(rows, checkpoint=last)
            self._ecp = last
        changed: Mapping[str, dict[str, Any]] = {}
        merged: set[str] | None = None  # unknown when the profile changes were stored before
        if last > pcp:
            changes = resolver.take_changes()
            changed = changes.profiles
            merged = {m["survivor_id"] for m in changes.merges}
            touched.update(changed)
            # A background store may return before the batch is stored; if that write fails,
            # the next ``apply`` (or ``settle``, when idle) raises and the batch is redone.
            self._profiles.apply(changes, checkpoint=last)
            self._pcp = last
        if observed:
            self._notify(observed, last, changed, merged)
        if rewritten:
            # Last, once the batch is stored (background writers included): replaying this
            # batch after a crash or a failed write must still find the identities the full
            # messages carried. (A crash just before this line leaves these payloads in full
            # in the log until retention purges them.)
            self._settle()
            self._log.replace(rewritten)
            self.minimized += len(rewritten)
        self.processed += len(records)
        if self._on_change and touched:
            self._on_change(touched)

    def _settle(self) -> None:
        """Wait for writes still in flight in background stores; raise if one failed."""
        self._profiles.settle()
        for observer in self._observers:
            settle = getattr(observer, "settle", None)
            if settle is not None:
                settle()

    def _minimize(
        self, kept: list[tuple[dict[str, Any], str, str | None, bytes]]
    ) -> tuple[list[tuple[dict[str, Any], str, str | None, bytes]], list[tuple[str, bytes]]]:
        """Store the events of people who refuse analytics in minimal form only: the event
        rows and what observers see; returns the rows and the log payloads to rewrite."""
        assert self._minimizer is not None
        resolver = self._resolver
        pids = {pid for _, pid, _, _ in kept} - {"unresolved"}
        doc = resolver.doc
        docs = {
            pid: d if not (d := doc(pid)).get("merged_into") else doc(resolver.survivor(pid))
            for pid in pids
        }
        refused = self._minimizer.refusing_analytics(docs, ((pid, msg) for msg, pid, _, _ in kept))
        if not refused:
            return kept, []
        out: list[tuple[dict[str, Any], str, str | None, bytes]] = []
        rewritten: list[tuple[str, bytes]] = []
        for msg, pid, session_id, payload in kept:
            if pid in refused:
                self._minimizer.minimize(msg)
                payload = orjson.dumps(msg)
                rewritten.append((str(msg["messageId"]), payload))
            out.append((msg, pid, session_id, payload))
        return out, rewritten

    def _notify(
        self,
        processed: list[tuple[int, Mapping[str, Any], str]],
        last: int,
        changed: Mapping[str, dict[str, Any]],
        merged: set[str] | None = None,
    ) -> None:
        # Observers see the surviving profile of each message (merges may happen mid-batch)
        # and its document as just stored (``changed`` holds those this batch wrote).
        resolver = self._resolver
        survivors: dict[str, str] = {}
        docs: dict[str, dict[str, Any]] = {}
        for pid in {p for _, _, p in processed} - {"unresolved"}:
            survivor = survivors[pid] = resolver.survivor(pid)
            if survivor not in docs:
                docs[survivor] = changed.get(survivor) or resolver.doc(survivor)
        # ``merged`` flags profiles that absorbed another in this batch (None: unknown, so
        # every profile is flagged); observers re-derive everything about those.
        if merged is not None:
            merged = {resolver.survivor(pid) for pid in merged}
            observed = [
                Observed(offset, msg, live, live in merged)
                for offset, msg, pid in processed
                if (live := survivors.get(pid, pid))
            ]
        else:
            observed = [
                Observed(offset, msg, survivors.get(pid, pid)) for offset, msg, pid in processed
            ]
        for i, observer in enumerate(self._observers):
            if last <= self._ocp[i]:
                continue
            since = self._ocp[i]
            mine = (
                observed
                if observed[0].offset > since
                else [o for o in observed if o.offset > since]
            )
            observer.observe(mine, docs, last)
            self._ocp[i] = last

    def _update_profile(self, pid: str, msg: Mapping[str, Any], at: str, now: datetime) -> str:
        resolver = self._resolver
        source = (msg.get("_meta") or {}).get("source", "api")
        kind = msg["type"]
        if kind == "identify":
            resolver.apply_traits(pid, msg.get("traits") or {}, source, at)
        ctx_traits = (msg.get("context") or {}).get("traits")
        if isinstance(ctx_traits, dict) and ctx_traits and kind != "group":
            resolver.apply_traits(pid, ctx_traits, source, at)
        doc = resolver.touch(pid)
        if kind == "group" and msg.get("groupId") not in doc["groups"]:
            doc["groups"].append(msg["groupId"])
        session_id = self._session(doc, at)
        apply_event(doc, msg, at)
        computed = doc["computed"]
        if (
            kind != "track"
            or msg["event"] in (ORDER_COMPLETED, ORDER_REFUNDED)
            or (computed["lifecycle_stage"] == "anonymous")
        ):
            # Only these can change the stage at event time (reads refresh it by the clock).
            settings = self._settings
            computed["lifecycle_stage"] = lifecycle_stage(
                doc, now, settings.lapsing_after_days, settings.churned_after_days
            )
        return session_id

    def _session(self, doc: dict[str, Any], at: str) -> str:
        current = doc.get("session")
        if current is not None:
            start, last = current["start"], current["last"]
            # Stored times sort as text, so only the side the event falls on needs date
            # maths: it joins when within the timeout of the session's start or end.
            if at > last:
                if parse_iso(at) <= parse_iso(last) + self._timeout:
                    current["last"] = at
                    return str(current["id"])
            elif at >= start or parse_iso(start) - self._timeout <= parse_iso(at):
                if at < start:
                    current["start"] = at
                return str(current["id"])
        digest = hashlib.blake2b(f"{doc['profile_id']}\x00{at}".encode(), digest_size=8)
        session_id = "s_" + digest.hexdigest()
        doc["computed"]["sessions"] += 1
        if current is None or at > current["last"]:
            doc["session"] = {"id": session_id, "start": at, "last": at}
        return session_id

    @staticmethod
    def _row(
        msg: Mapping[str, Any], pid: str, session_id: str | None, payload: bytes
    ) -> dict[str, Any]:
        kind = msg["type"]
        at = msg["timestamp"]
        device_type, os_name, browser, hour, weekday = event_fields(at, msg.get("context"))
        return {
            "message_id": msg["messageId"],
            "profile_id": pid,
            "type": kind,
            "event": msg.get("event") if kind == "track" else msg.get("name"),
            "user_id": msg.get("userId"),
            "anonymous_id": msg.get("anonymousId"),
            "timestamp": at,
            "received_at": msg.get("receivedAt"),
            "session_id": session_id,
            "device_type": device_type,
            "os": os_name,
            "browser": browser,
            "local_hour": hour,
            "local_weekday": weekday,
            "source": (msg.get("_meta") or {}).get("source"),
            "payload": payload.decode(),
        }

    def forget(self, profile_ids: Sequence[str]) -> None:
        """After an erasure: drop the profiles from what processing keeps in memory, and
        delete them again from the stores it writes, once no batch is in flight.

        Without this, the next message for the same person (an erasure that does not
        suppress) would update the document still held in memory and write the erased
        traits and identities back. Deleting again here, between batches and after the
        writer processes settled, covers a batch that was in flight while the erasure ran.
        """
        ids = list(dict.fromkeys(profile_ids))
        if not ids:
            return
        with self._lock:
            self._settle()
            self._resolver.forget(ids)
            self._profiles.delete_profiles(ids)
            for observer in self._observers:
                forget = getattr(observer, "forget", None)
                if forget is not None:
                    forget(ids)

    # -- running ----------------------------------------------------------------------------
    def drain(self, timeout: float = 600.0) -> None:
        """Process until the log is fully consumed (used by importers, the demo and tests)."""
        deadline = time.monotonic() + timeout
        while self.position < self._log.head():
            if time.monotonic() > deadline:
                raise TimeoutError(f"processor still {self.lag()} records behind")
            if self.step() == 0:
                time.sleep(0.01)
        self.step()  # nothing left to read: waits for the last batch's profiles to be stored

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="personify-processor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.step() == 0:
                    self._log.wait(self.position, timeout=0.2)
                self.last_error = None
            except Exception as exc:  # keep serving; the batch is retried from the checkpoint
                self.last_error = repr(exc)
                log.exception("processor step failed; retrying from the checkpoint")
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
