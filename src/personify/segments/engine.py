"""The segment engine: memberships that follow events and time, without nightly recomputes.

It is an observer of the profile processor (``personify.profiles.processor.Observer``): after
each processed batch it folds the batch's events into the behavioural clause states of the
profiles they touched, re-evaluates those profiles' segments once, and writes the states, the
membership changes (entered / exited, with history and an internal change stream) and its
checkpoint in one transaction. Each profile also gets a *due* time — the next moment any of
its answers changes with no new event (a window expiring, 24 h passing since a cart add) — and
:meth:`tick`, called by the scheduler thread, re-evaluates only the profiles that are due.

Definitions live in the versioned definition store; the engine polls its revision and, when a
segment is created or changed, rebuilds that segment from the event history and the profile
store (:meth:`rebuild`), so a new segment is complete at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any, Final

import orjson

from personify.clock import Clock
from personify.definitions import DefinitionStore
from personify.profiles.processor import Observed
from personify.profiles.records import ORDER_COMPLETED, ORDER_REFUNDED, iso, parse_iso
from personify.segments.behavior import Clause, EventAggregate, event_document
from personify.segments.definition import KIND, Segment, compile_segment, evaluate_at, judge
from personify.segments.document import condition_document
from personify.segments.store import SegmentStore, SegmentWrite
from personify.storage.ports import EventStore, ProfileStore

log = logging.getLogger(__name__)
ScoresFor = Callable[[Sequence[str]], Mapping[str, Mapping[str, Any]]]


NEVER: Final = "9999-12-31T00:00:00.000000Z"  # evaluated, and nothing is due by time alone
_ALWAYS: Final = frozenset({"computed.last_seen", "computed.event_counts"})
_ORDER_FIELDS: Final = frozenset(
    {
        "computed.orders",
        "computed.revenue",
        "computed.refunds",
        "computed.refunded",
        "computed.first_order_at",
        "computed.last_order_at",
        "computed.average_order_value",
        "computed.lifecycle_stage",
    }
)


_FIELD_SETS: dict[tuple[bool, bool, bool, bool, bool], frozenset[str]] = {}


def _changed_fields(message: Mapping[str, Any], doc: Mapping[str, Any]) -> frozenset[str]:
    """Profile fields one processed message can have changed (merges are flagged apart).

    ``doc`` is the profile after the batch: a message that opened the profile or a session
    carries the timestamp stored as ``first_seen`` or the session's start.
    """
    kind = message.get("type")
    at = message.get("timestamp")
    key = (
        (doc.get("computed") or {}).get("first_seen") == at,
        (doc.get("session") or {}).get("start") == at,
        kind == "track" and message.get("event") in (ORDER_COMPLETED, ORDER_REFUNDED),
        kind != "track" or bool(message.get("userId")),
        kind == "identify" or bool((message.get("context") or {}).get("traits")),
    )
    fields = _FIELD_SETS.get(key)
    if fields is None:  # one of 32 answers, each built once
        first, session, order, lifecycle, traits = key
        fields = _FIELD_SETS[key] = frozenset(
            _ALWAYS
            | ({"computed.first_seen"} if first else set())
            | ({"computed.sessions"} if session else set())
            | (_ORDER_FIELDS if order else set())
            | ({"computed.lifecycle_stage"} if lifecycle else set())
            | ({"traits"} if traits else set())
        )
    return fields


_NONE: Final[Mapping[str, bytes]] = {}


class _States(Mapping[str, dict[str, Any]]):
    """One profile's clause states by state id: the stored ones (JSON) decoded when first
    read, so a batch decodes only what it evaluates; each decoded state is the batch's own
    to change, and the store keeps what was written until the batch's own write."""

    __slots__ = ("_decoded", "_stored")

    def __init__(self, stored: Mapping[str, bytes]) -> None:
        self._stored = stored
        self._decoded: dict[str, dict[str, Any]] = {}

    def get(self, sid: str, default: Any = None) -> Any:
        state = self._decoded.get(sid)
        if state is None:
            raw = self._stored.get(sid)
            if raw is None:
                return default
            state = self._decoded[sid] = orjson.loads(raw)
        return state

    def has_any(self, sids: frozenset[str]) -> bool:
        """Whether any of these states exists (``keys().isdisjoint``, without the ABC)."""
        return not (self._stored.keys().isdisjoint(sids) and self._decoded.keys().isdisjoint(sids))

    def put(self, sid: str, state: dict[str, Any]) -> None:
        """Add a state first created by this batch."""
        self._decoded[sid] = state

    def __getitem__(self, sid: str) -> dict[str, Any]:
        state: dict[str, Any] | None = self.get(sid)
        if state is None:
            raise KeyError(sid)
        return state

    def __contains__(self, sid: object) -> bool:
        return sid in self._decoded or sid in self._stored

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored.keys() | self._decoded.keys())

    def __len__(self) -> int:
        return len(self._stored.keys() | self._decoded.keys())


class SegmentEngine:
    name = "segments"

    def __init__(
        self,
        store: SegmentStore,
        definitions: DefinitionStore,
        profiles: ProfileStore,
        events: EventStore | None,
        clock: Clock,
        scores: ScoresFor | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        self.store = store
        store.own()  # this engine is the store's only writer: keep its working set in memory
        self._definitions = definitions
        self._profiles = profiles
        self._events = events
        self._clock = clock
        self._scores = scores
        self._poll = poll_seconds
        self._lock = threading.RLock()
        self._revision = -1
        self._checked = 0.0
        self.segments: dict[str, Segment] = {}
        self._order: list[Segment] = []
        self._clauses: dict[str, Clause] = {}
        self._owners: dict[str, Clause] = {}
        self._by_event: dict[str | None, list[Clause]] = {}
        # Positions in ``_order`` of the segments each profile field / clause state feeds,
        # those evaluated whatever changed (static lists), and those reading memberships.
        self._by_dep: dict[str, list[int]] = {}
        self._by_state: dict[str, list[int]] = {}
        self._always: frozenset[int] = frozenset()
        self._late: frozenset[int] = frozenset()
        # For a full evaluation: the segments that may answer without any clause state
        # (not purely behavioural, or true for an empty history), and positions by key.
        self._stateless: frozenset[int] = frozenset()
        self._position: dict[str, int] = {}
        self._affected_memo: dict[
            tuple[frozenset[str], frozenset[str]], tuple[frozenset[int], list[int]]
        ] = {}
        self._reads_scores = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outer: AbstractContextManager[Any] = nullcontext()
        self.last_error: str | None = None
        self.reload()  # segments saved while no engine ran are built now

    # -- definitions ----------------------------------------------------------------------
    def reload(self, *, rebuild: bool = True) -> list[str]:
        """Pick up changed definitions; rebuild the segments that changed. Returns their keys."""
        with self._lock:
            revision = self._definitions.revision()
            if revision == self._revision:
                return []
            current: dict[str, Segment] = {}
            for d in self._definitions.list(KIND):
                try:
                    current[d.key] = compile_segment({**d.body, "key": d.key}, d.version)
                except Exception as exc:  # validated when saved; an old body may not be
                    log.warning("segment %s v%s no longer compiles: %s", d.key, d.version, exc)
            built = self.store.built()
            changed = [k for k, s in current.items() if built.get(k) != s.version]
            removed = [k for k in built if k not in current]
            self._install(current)
            self._revision = revision
            if removed:
                self._drop(removed)
            if rebuild and changed:
                self._rebuild(changed)
            return changed + removed

    def _install(self, segments: dict[str, Segment]) -> None:
        self.segments = segments
        # Segments that read other segments' memberships are evaluated after the others.
        self._order = sorted(segments.values(), key=lambda s: (s.uses_segments, s.key))
        self._clauses = {cid: c for s in segments.values() for cid, c in s.clauses.items()}
        # One clause per state: clauses sharing a state update it once per event.
        self._owners = {c.state_id: c for c in self._clauses.values()}
        by_event: dict[str | None, list[Clause]] = defaultdict(list)
        for clause in self._owners.values():
            for f in clause.filters():
                for name in f.names or {None}:
                    if clause not in by_event[name]:
                        by_event[name].append(clause)
        self._by_event = dict(by_event)
        by_dep: dict[str, list[int]] = defaultdict(list)
        by_state: dict[str, list[int]] = defaultdict(list)
        for i, segment in enumerate(self._order):
            for dep in segment.deps:
                by_dep[dep].append(i)
            for sid in segment.state_ids:
                by_state[sid].append(i)
        self._by_dep, self._by_state = dict(by_dep), dict(by_state)
        self._always = frozenset(i for i, s in enumerate(self._order) if s.kind == "static")
        self._late = frozenset(i for i, s in enumerate(self._order) if s.uses_segments)
        self._stateless = frozenset(
            i for i, s in enumerate(self._order) if not s.behavioural or s.empty_answer
        )
        self._position = {s.key: i for i, s in enumerate(self._order)}
        self._affected_memo = {}
        self._reads_scores = any("scores" in s.deps for s in self._order)

    def _affected(
        self, fields: frozenset[str], sids: frozenset[str]
    ) -> tuple[frozenset[int], list[int]]:
        """The segments that changed fields and states affect (with static lists), and the
        positions to visit (those, then any reading memberships). Few combinations occur:
        each is worked out once."""
        key = (fields, sids)
        found = self._affected_memo.get(key)
        if found is None:
            wanted = set(self._always)
            for name in fields:
                wanted.update(self._by_dep.get(name, ()))
            for sid in sids:
                wanted.update(self._by_state.get(sid, ()))
            if len(self._affected_memo) >= 4096:
                self._affected_memo.clear()
            found = self._affected_memo[key] = (frozenset(wanted), sorted(wanted | self._late))
        return found

    def _drop(self, keys: list[str]) -> None:
        now = iso(self._clock.now())
        w = SegmentWrite()
        for key in keys:
            w.exited += [(key, m["profile_id"], now) for m in self.store.members(key, None)]
            w.built[key] = None
        self.store.write(w)

    def attach(self, outer: AbstractContextManager[Any]) -> None:
        """Share the processor's lock: the scheduler then never runs while a batch is half
        written (the event store ahead of this engine), so a rebuild never counts twice."""
        self._outer = outer

    def _maybe_reload(self) -> set[str]:
        """Reload definitions if the poll interval passed; the clause ids rebuilt from history."""
        t = time.monotonic()
        if t - self._checked < self._poll:
            return set()
        self._checked = t
        before = set(self._owners)
        changed = self.reload()
        return {
            sid for k in changed if k in self.segments for sid in self.segments[k].state_ids
        } | (set(self._owners) - before)

    # -- the observer ---------------------------------------------------------------------
    def checkpoint(self) -> int:
        return self.store.checkpoint()

    def forget(self, profile_ids: Sequence[str]) -> None:
        """After an erasure: delete the profiles' memberships, history, states and due
        times (again, from this writer's side) and drop them from the working set."""
        with self._lock:
            self.store.delete_profiles(profile_ids)

    def settle(self) -> None:
        """Wait for a batch the store writes in the background; raise if it failed."""
        self.store.settle()

    def observe(
        self,
        events: Sequence[Observed],
        profiles: Mapping[str, dict[str, Any]],
        checkpoint: int,
    ) -> None:
        with self._lock:
            # A segment rebuilt now has already read this batch from the event store.
            rebuilt = self._maybe_reload()
            if not self.segments:
                self.store.write(SegmentWrite(checkpoint=checkpoint))
                return
            by_profile: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
            full: set[str] = set()
            for item in events:
                if item.profile_id in profiles:
                    by_profile[item.profile_id].append(item.message)
                    if item.merged:
                        full.add(item.profile_id)
            w = SegmentWrite(checkpoint=checkpoint)
            self._evaluate(by_profile, profiles, w, skip=rebuilt, full=full)
            self.store.write(w)

    def _evaluate(
        self,
        by_profile: Mapping[str, Sequence[Mapping[str, Any]]],
        docs: Mapping[str, dict[str, Any]],
        w: SegmentWrite,
        skip: set[str] | None = None,
        full: set[str] | None = None,
    ) -> None:
        """Fold events into clause states and re-decide the profiles' memberships.

        ``full`` names the profiles to re-evaluate against every segment (merged ones, or all
        when ``full`` is None); the others only against segments their events can affect.
        """
        pids = list(by_profile)
        now = self._clock.now()
        stored = self.store.encoded_states(pids)
        members = self.store.memberships(pids)
        dues = self.store.dues(pids) if full is not None else {}
        scores = self._scores(pids) if self._scores and self._reads_scores else {}
        at = iso(now)
        by_event = self._by_event
        anyname = by_event.get(None, [])
        for pid in pids:
            mine = _States(stored.get(pid) or _NONE)
            updated: set[str] = set()
            # A profile never evaluated before (no due row) gets every segment.
            partial = full is not None and pid not in full and pid in dues
            changed: frozenset[str] | None = frozenset() if partial else None
            for message in by_profile[pid]:
                if changed is not None:
                    changed = changed | _changed_fields(message, docs[pid])
                name = message.get("event")
                relevant = by_event.get(name, []) + anyname if name else anyname
                if not relevant:
                    continue
                event = event_document(message)  # once, however many filters read it
                for clause in relevant:
                    sid = clause.state_id
                    if (skip and sid in skip) or not clause.touches(message, event):
                        continue
                    state = mine.get(sid)  # decoded here: this batch's own copy
                    fresh = state is None
                    if state is None:
                        state = {}
                    if clause.update(state, message, event):
                        if fresh:
                            mine.put(sid, state)
                        if isinstance(clause, EventAggregate):
                            clause.prune(state, now)
                        w.states[(pid, sid)] = state
                        updated.add(sid)
            self._decide(
                pid,
                docs[pid],
                mine,
                members.get(pid, {}),
                scores.get(pid),
                now,
                at,
                w,
                None if changed is None else (changed, frozenset(updated), dues.get(pid)),
            )
            if pid in dues and w.due.get(pid) == dues[pid]:
                del w.due[pid]  # unchanged: nothing to write

    def _decide(
        self,
        pid: str,
        raw: Mapping[str, Any],
        states: _States,
        current: Mapping[str, str],
        scores: Mapping[str, Any] | None,
        now: datetime,
        at: str,
        w: SegmentWrite,
        partial: tuple[frozenset[str], frozenset[str], str | None] | None = None,
    ) -> None:
        """Re-decide one profile's memberships and its next due time.

        With ``partial = (changed fields, updated clause ids, current due)`` only segments
        that depend on those are evaluated; the due time then stays at most the current one
        (an early due only costs one extra full evaluation when it comes).
        """
        if raw.get("merged_into"):
            w.exited += [(seg, pid, at) for seg in current]
            w.due[pid] = None
            return
        order = self._order
        wanted: frozenset[int] | None = None
        if partial is None:
            # Every segment, less those with only event clauses that have seen nothing of
            # this profile and that it is out of (the answer for no history is "out").
            found = set(self._stateless)
            position = self._position
            found.update(position[key] for key in current if key in position)
            by_state = self._by_state
            for sid in states:
                if sid in by_state:
                    found.update(by_state[sid])
            positions: Iterable[int] = sorted(found)
        else:
            wanted, positions = self._affected(partial[0], partial[1])
        doc: dict[str, Any] | None = None  # built on first need: often nothing reads it
        identities: dict[str, list[str]] = {}
        inside = set(current)
        due: datetime | None = None
        moved = False
        for i in positions:
            segment = order[i]
            if wanted is not None and i not in wanted and not moved:
                continue  # reads memberships, and none changed
            if segment.behavioural and not states.has_any(segment.state_ids):
                # Only event clauses, none of which has seen an event of this profile: the
                # answer is the one for an empty history, and nothing is due.
                member = segment.empty_answer
                if member == (segment.key in inside):
                    continue
                moment = None
            else:
                if not segment.reads_doc:
                    pass
                elif doc is None:
                    doc = condition_document({**raw, "scores": scores or {}, "segments": []})
                    doc["segments"] = sorted(inside)
                    identities = {**(raw.get("identities") or {}), "profile_id": [pid]}
                elif segment.uses_segments and moved:
                    doc["segments"] = sorted(inside)
                # The two common shapes are answered here directly (see ``judge``).
                only, test = segment.only, segment.test
                if only is not None:  # reads no profile field, or one the same in ``raw``
                    member, moment = only.judge(states.get(only.state_id), doc or raw, now)
                else:
                    assert doc is not None  # these read the condition document
                    if test is not None:
                        member, moment = test(doc), None
                    else:
                        member, moment = judge(segment, doc, identities, states, now)
            if member and segment.key not in inside:
                w.entered.append((segment.key, pid, at))
                inside.add(segment.key)
                moved = True
            elif not member and segment.key in inside:
                w.exited.append((segment.key, pid, at))
                inside.discard(segment.key)
                moved = True
            if moment is not None and (due is None or moment < due):
                due = moment
        kept = partial[2] if partial is not None else None
        if kept is not None and (due is None or parse_iso(kept) < due):
            w.due[pid] = kept  # the earlier one stays (usually: a later event moved it on)
        else:
            w.due[pid] = iso(due) if due is not None else NEVER

    # -- time -----------------------------------------------------------------------------
    def tick(self, limit: int = 5000) -> int:
        """Re-evaluate the profiles whose memberships may have changed with time; how many."""
        with self._outer, self._lock:
            self._maybe_reload()
            due = self.store.due_before(iso(self._clock.now()), limit)
            if not due:
                return 0
            self.refresh(due)
            return len(due)

    def refresh(self, profile_ids: Iterable[str]) -> None:
        """Re-evaluate profiles now (after scores change, or when due)."""
        with self._lock:
            pids = list(dict.fromkeys(profile_ids))
            docs = self._profiles.get_many(pids)
            w = SegmentWrite()
            for pid in pids:
                if pid not in docs:
                    w.due[pid] = None
            self._evaluate({pid: () for pid in pids if pid in docs}, docs, w)
            self.store.write(w)

    def start(self, interval: float = 1.0) -> None:
        """Run :meth:`tick` (and definition reloads) every ``interval`` seconds in a thread."""
        if self._thread is not None:
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    while self.tick() >= 5000:
                        pass
                    self.last_error = None
                except Exception as exc:  # keep the scheduler alive; report through stats
                    self.last_error = repr(exc)
                    log.exception("segment scheduler tick failed")

        self._thread = threading.Thread(target=run, name="personify-segments", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    # -- rebuild --------------------------------------------------------------------------
    def rebuild(self, keys: Sequence[str] | None = None) -> dict[str, int]:
        """Recompute segments (all, or ``keys``) from the event history; sizes afterwards.

        Clause states of the rebuilt segments are recomputed from the event store, then every
        live profile is evaluated. Memberships that change are recorded as entered/exited.
        """
        with self._outer:
            self.reload(rebuild=False)
            return self._rebuild(keys)

    def _rebuild(self, keys: Sequence[str] | None = None) -> dict[str, int]:
        with self._lock:
            wanted = [self.segments[k] for k in (keys or list(self.segments)) if k in self.segments]
            clauses = {c.state_id: c for s in wanted for c in s.clauses.values()}
            if clauses and self._events is not None:
                self._replay_clauses(clauses)
            self._evaluate_everyone()
            self.store.write(SegmentWrite(built={s.key: s.version for s in wanted}))
            sizes = self.store.sizes()
            return {s.key: sizes.get(s.key, 0) for s in wanted}

    def reevaluate(self) -> None:
        """Evaluate every live profile again from stored states (after batch scoring)."""
        with self._outer, self._lock:
            self._evaluate_everyone()

    def _evaluate_everyone(self) -> None:
        now = self._clock.now()
        at = iso(now)
        for batch in self._profiles.scan(2000):
            pids = [d["profile_id"] for d in batch]
            stored = self.store.encoded_states(pids)
            members = self.store.memberships(pids)
            scores = self._scores(pids) if self._scores and self._reads_scores else {}
            w = SegmentWrite()
            for doc in batch:
                pid = doc["profile_id"]
                mine = _States(stored.get(pid) or _NONE)
                self._decide(pid, doc, mine, members.get(pid, {}), scores.get(pid), now, at, w)
            self.store.write(w)

    def _replay_clauses(self, clauses: Mapping[str, Clause]) -> None:
        assert self._events is not None
        names: set[str] = set()
        types: set[str] = set()
        for clause in clauses.values():
            for f in clause.filters():
                names |= f.names
                types |= f.types
                if not f.names and not f.types:
                    names, types = set(), set()
                    break
        states: dict[tuple[str, str], dict[str, Any]] = {}
        survivor: dict[str, str] = {}
        now = self._clock.now()
        # Which clauses an event name can touch (None: clauses that match any name).
        by_name: dict[str | None, list[Clause]] = defaultdict(list)
        for clause in clauses.values():
            for f in clause.filters():
                for name in f.names or {None}:
                    if clause not in by_name[name]:
                        by_name[name].append(clause)
        anyname = by_name.get(None, [])
        for rows in self._events.scan(sorted(names) or None, sorted(types) or None):
            unknown = [r["profile_id"] for r in rows if r["profile_id"] not in survivor]
            if unknown:
                for pid, doc in self._profiles.get_many(set(unknown)).items():
                    survivor[pid] = doc.get("merged_into") or pid
                self._follow(survivor)
            for row in rows:
                live = survivor.get(row["profile_id"])
                if live is None:
                    continue
                pid = live
                candidates = by_name.get(row["event"], []) + anyname if row["event"] else anyname
                if not candidates:
                    continue
                message = orjson.loads(row["payload"])
                for clause in candidates:
                    key = (pid, clause.state_id)
                    state = states.get(key)
                    fresh = {} if state is None else state
                    if clause.update(fresh, message) and state is None:
                        states[key] = fresh
        for (_pid, cid), state in states.items():
            clause = clauses[cid]
            if isinstance(clause, EventAggregate):
                clause.prune(state, now)
        self.store.write(SegmentWrite(states=states, clear_clauses=list(clauses)))

    def _follow(self, survivor: dict[str, str]) -> None:
        """Resolve merge chains so every id maps to its live profile."""
        for _ in range(64):
            pending = {v for k, v in survivor.items() if v != k and v not in survivor}
            if not pending:
                break
            for pid, doc in self._profiles.get_many(pending).items():
                survivor[pid] = doc.get("merged_into") or pid
        for pid in list(survivor):
            seen = 0
            target = survivor[pid]
            while survivor.get(target, target) != target and seen < 64:
                target, seen = survivor[target], seen + 1
            survivor[pid] = target

    # -- reads ----------------------------------------------------------------------------
    def dry_run(self, body: Mapping[str, Any], sample: int = 10) -> dict[str, Any]:
        """Count and sample the profiles a (not yet saved) definition would hold right now.

        Under ``serve`` it reads the working set, which may hold a batch the writer process
        has not stored yet; were that write to fail, the batch is redone, so the answer
        stays right within a batch."""
        with self._lock:
            segment = compile_segment({**body, "key": body.get("key") or "dry_run"})
            states: dict[str, dict[str, dict[str, Any]]] = {}
            if segment.clauses and self._events is not None:
                states = self._states_from_history(
                    {c.state_id: c for c in segment.clauses.values()}
                )
            now = self._clock.now()
            count, examples = 0, list[str]()
            for batch in self._profiles.scan(2000):
                pids = [d["profile_id"] for d in batch]
                members = self.store.memberships(pids)
                scores = self._scores(pids) if self._scores else {}
                for raw in batch:
                    pid = raw["profile_id"]
                    doc = condition_document(
                        {**raw, "scores": scores.get(pid) or {}, "segments": list(members[pid])}
                    )
                    mine = states.get(pid, {})
                    idents = {**(raw.get("identities") or {}), "profile_id": [pid]}
                    if evaluate_at(segment, doc, idents, mine, now):
                        count += 1
                        if len(examples) < sample:
                            examples.append(pid)
            return {"count": count, "sample": examples, "at": iso(now)}

    def _states_from_history(
        self, clauses: Mapping[str, Clause]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        assert self._events is not None
        states: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        survivor: dict[str, str] = {}
        for rows in self._events.scan(None, None):
            unknown = {r["profile_id"] for r in rows if r["profile_id"] not in survivor}
            if unknown:
                for pid, doc in self._profiles.get_many(unknown).items():
                    survivor[pid] = doc.get("merged_into") or pid
                self._follow(survivor)
            for row in rows:
                live = survivor.get(row["profile_id"])
                if live is None:
                    continue
                pid = live
                message = orjson.loads(row["payload"])
                for clause in clauses.values():
                    clause.update(states[pid].setdefault(clause.state_id, {}), message)
        return states

    def close(self) -> None:
        self.stop()
        self.store.close()
