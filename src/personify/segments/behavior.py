"""Behavioural conditions: what a profile did, over time, kept current without rescans.

A segment condition may contain, besides GrowthBook's operators on the profile document:

``{"$event": {...}}`` — an aggregate over the profile's events that match a filter::

    {"$event": {"name": "Product Viewed",              # track event name(s), or "type": "page"
                "where": {"properties.product_id": "sku-1"},   # a condition on the event
                "within": "7d",                        # sliding window (omit: all time)
                "count": {"$gte": 3}}}                 # or sum / distinct / first / last

    measures: ``count`` (default ``{"$gte": 1}``), ``sum: {"property": "revenue", "value": {...}}``,
    ``distinct: {"property": "product_id", "value": {...}}``, and recency
    ``last: {"$olderThan": "14d"}`` / ``first: {"$newerThan": "7d"}``.

``{"$sequence": {"first": {"name": "Product Added"}, "notFollowedBy": {"name": "Order
Completed"}, "within": "24h"}}`` — the latest ``first`` event is at least ``within`` old and no
``notFollowedBy`` event came after it (a cart abandoner).

``{"computed.last_order_at": {"$olderThan": "90d"}}`` / ``$newerThan`` — a timestamp on the
profile compared with now.

Each such clause keeps a small state per profile (timestamps inside its window, or a running
total), updated by each matching event, and knows the next moment its answer changes by
itself (when the oldest event leaves the window, when 24 h have passed), so the segment
engine re-evaluates a profile when that moment comes instead of rescanning history. Times
come from the engine's injectable clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from bisect import bisect_right, insort_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from personify.errors import Problem
from personify.profiles.records import iso
from personify.segments.conditions import compile_condition
from personify.segments.validation import describe, validate_condition

State = dict[str, Any]
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DURATION_DAYS = 36_500  # 100 years: longer ones overflow datetime arithmetic
MAX_DURATION = timedelta(days=MAX_DURATION_DAYS)
MAX_WINDOW_ENTRIES = 5000  # per profile and clause; the oldest are dropped beyond it
TIME_OPS = ("$olderThan", "$newerThan")
EVENT_ROOTS = ("event", "type", "name", "properties", "context", "traits")
_MEASURES = ("count", "sum", "distinct", "first", "last")
_AT = itemgetter(0)  # a window entry's time


def parse_duration(text: Any) -> timedelta:
    """``"30m"``, ``"24h"``, ``"7d"``, ``"2w"`` → timedelta; ValueError with the accepted forms.

    At most :data:`MAX_DURATION` (100 years): the engine adds durations to and subtracts them
    from timestamps, which longer ones would push out of the range of a date.
    """
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    digits = match.group(1).lstrip("0") if match else ""
    if not match or not digits:
        raise ValueError(
            f"a duration is a positive number and a unit (s, m, h, d, w), e.g. "
            f'"30m", "24h", "7d"; got {describe(text)}'
        )
    # Many digits are over the limit whatever the unit (and int() refuses thousands of them).
    seconds = int(digits) * _UNITS[match.group(2)] if len(digits) <= 12 else None
    if seconds is None or seconds > MAX_DURATION.total_seconds():
        raise ValueError(
            f"durations run up to {MAX_DURATION_DAYS}d (100 years); got {describe(text)}"
        )
    return timedelta(seconds=seconds)


_PARSED: dict[str, datetime] = {}
_PARSED_MAX = 4096


def _ts(text: str) -> datetime:
    """Parse an ISO timestamp (UTC when it has no zone), remembering recent ones: the segment
    engine asks for the same few (a profile's ``last_seen``, a sequence's start) once per
    segment that reads them."""
    moment = _PARSED.get(text)
    if moment is None:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:  # a profile's "2024-05-01" (events always carry a zone)
            moment = moment.replace(tzinfo=UTC)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[text] = moment
    return moment


_iso = iso


def event_document(message: Mapping[str, Any]) -> dict[str, Any]:
    """What an event filter (``where``) reads: event, type, name, properties, context, traits."""
    return {
        "event": message.get("event"),
        "type": message.get("type"),
        "name": message.get("name"),
        "properties": message.get("properties") or {},
        "context": message.get("context") or {},
        "traits": message.get("traits") or {},
    }


@dataclass(frozen=True)
class EventFilter:
    """Which events a clause counts: by track name(s) and/or message type, and a condition."""

    names: frozenset[str]
    types: frozenset[str]
    where: Callable[[Mapping[str, Any]], bool] | None

    def matches(self, message: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> bool:
        """Whether the message counts (``event``: its :func:`event_document`, if built)."""
        if self.names and message.get("event") not in self.names:
            return False
        if self.types and message.get("type") not in self.types:
            return False
        if self.where is None:
            return True
        return self.where(event_document(message) if event is None else event)


def _clause_id(kind: str, spec: Any) -> str:
    text = json.dumps([kind, spec], sort_keys=True, default=str)
    return "c_" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class Clause(ABC):
    """A compiled behavioural clause; subclasses define state, update, truth and due time."""

    kind = ""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = dict(spec)
        self.id = _clause_id(self.kind, self.spec)
        # Where the state lives: clauses that keep the same state share it (sequences that
        # differ only in ``within`` keep the same two timestamps).
        self.state_id = self.id

    def filters(self) -> list[EventFilter]:
        return []

    def touches(self, message: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> bool:
        """Whether :meth:`update` may change a state for this message (a filter matches)."""
        return any(f.matches(message, event) for f in self.filters())

    def update(
        self, state: State, message: Mapping[str, Any], event: Mapping[str, Any] | None = None
    ) -> bool:
        """Fold one event into the state; whether the state changed.

        ``event`` is the message's :func:`event_document` when the caller built it already
        (one per message, however many clauses read it); else filters build their own.
        """
        return False

    @abstractmethod
    def holds(self, state: State | None, doc: Mapping[str, Any], now: datetime) -> bool:
        """Whether the clause is true for this state and profile at ``now``."""

    def due(self, state: State | None, doc: Mapping[str, Any], now: datetime) -> datetime | None:
        """The next moment after ``now`` when the answer may change with no new event."""
        return None

    def judge(
        self, state: State | None, doc: Mapping[str, Any], now: datetime
    ) -> tuple[bool, datetime | None]:
        """:meth:`holds` and :meth:`due` at once (subclasses share the work between them)."""
        return self.holds(state, doc, now), self.due(state, doc, now)


def _value_test(op: Any) -> Callable[[Any], bool]:
    condition = compile_condition({"v": op})
    return lambda value: condition({"v": value})


class EventAggregate(Clause):
    """``$event``: count / sum / distinct / first / last of matching events, maybe windowed."""

    kind = "$event"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.filter = _filter(spec)
        self.window = parse_duration(spec["within"]) if "within" in spec else None
        self._cached: tuple[datetime, str, str] | None = None
        measure = next((m for m in _MEASURES if m in spec), "count")
        self.measure = measure
        raw = spec.get(measure, {"$gte": 1})
        self.property: str | None = None
        if measure in ("sum", "distinct"):
            self.property = raw["property"]
            raw = raw.get("value", {"$gt": 0} if measure == "sum" else {"$gte": 1})
        if measure in ("first", "last"):
            ((op, amount),) = raw.items()
            self.time_op, self.age = op, parse_duration(amount)
        else:
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                raw = {"$eq": raw}
            self.test = _value_test(raw)

    def filters(self) -> list[EventFilter]:
        return [self.filter]

    def touches(self, message: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> bool:
        return self.filter.matches(message, event)

    def _value(self, message: Mapping[str, Any]) -> Any:
        if self.property is None:
            return 1
        value = (message.get("properties") or {}).get(self.property)
        if self.measure == "sum":
            return value if isinstance(value, int | float) and not isinstance(value, bool) else 0
        return None if value is None else str(value)

    def update(
        self, state: State, message: Mapping[str, Any], event: Mapping[str, Any] | None = None
    ) -> bool:
        if not self.filter.matches(message, event):
            return False
        at = message["timestamp"]
        if self.measure in ("first", "last"):
            state["first"] = min(state.get("first") or at, at)
            state["last"] = max(state.get("last") or at, at)
            return True
        value = self._value(message)
        if self.window is not None:
            entries: list[list[Any]] = state.setdefault("w", [])
            # Kept sorted by time (events mostly come in order: an append); after entries
            # of the same moment, as a stable sort would put it.
            insort_right(entries, [at, value], key=_AT)
            if len(entries) > MAX_WINDOW_ENTRIES:
                del entries[: len(entries) - MAX_WINDOW_ENTRIES]
            return True
        if self.measure == "count":
            state["n"] = state.get("n", 0) + 1
        elif self.measure == "sum":
            state["s"] = state.get("s", 0) + value
        elif value is not None:
            seen: list[str] = state.setdefault("d", [])
            if value not in seen and len(seen) < MAX_WINDOW_ENTRIES:
                seen.append(value)
        return True

    def _bounds(self, now: datetime) -> tuple[str, str]:
        """The window as ISO texts ``(start, now)``, computed once per moment."""
        cached = self._cached
        if cached is None or cached[0] != now:
            assert self.window is not None
            cached = self._cached = (now, _iso(now - self.window), _iso(now))
        return cached[1], cached[2]

    def _aggregate(self, state: State | None, now: datetime) -> float:
        state = state or {}
        if self.window is not None:
            if not state.get("w"):
                return 0
            start, end = self._bounds(now)
            window = state["w"]
            entries = window[
                bisect_right(window, start, key=_AT) : bisect_right(window, end, key=_AT)
            ]
            if self.measure == "count":
                return len(entries)
            if self.measure == "sum":
                return float(sum(e[1] for e in entries))
            return len({e[1] for e in entries if e[1] is not None})
        if self.measure == "count":
            return int(state.get("n", 0))
        if self.measure == "sum":
            return float(state.get("s", 0))
        return len(state.get("d", ()))

    def holds(self, state: State | None, doc: Mapping[str, Any], now: datetime) -> bool:
        if self.measure in ("first", "last"):
            at = (state or {}).get(self.measure)
            return _time_test(self.time_op, at, self.age, now)
        return self.test(self._aggregate(state, now))

    def due(self, state: State | None, doc: Mapping[str, Any], now: datetime) -> datetime | None:
        if self.measure in ("first", "last"):
            at = (state or {}).get(self.measure)
            return _time_due(at, self.age, now)
        if self.window is None or not state or not state.get("w"):
            return None
        start, now_iso = self._bounds(now)
        # The next change: the oldest in-window event leaves (entries are sorted by time), or
        # a future-dated one comes into the window.
        entries = state["w"]
        first = bisect_right(entries, start, key=_AT)  # the oldest entry after the start
        if first == len(entries):
            return None
        at = entries[first][0]
        return _ts(at) + self.window if at <= now_iso else _ts(at)

    def prune(self, state: State, now: datetime) -> None:
        """Forget window entries that can no longer count."""
        if self.window is not None and state.get("w"):
            start, _ = self._bounds(now)
            if state["w"][0][0] <= start:
                state["w"] = state["w"][bisect_right(state["w"], start, key=_AT) :]


class Sequence(Clause):
    """``$sequence``: the latest ``first`` event is ``within`` old, no ``notFollowedBy`` after."""

    kind = "$sequence"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.first = _filter(spec["first"])
        self.then = _filter(spec["notFollowedBy"])
        self.within = parse_duration(spec["within"])
        self.state_id = _clause_id(
            self.kind, {"first": spec["first"], "notFollowedBy": spec["notFollowedBy"]}
        )

    def filters(self) -> list[EventFilter]:
        return [self.first, self.then]

    def update(
        self, state: State, message: Mapping[str, Any], event: Mapping[str, Any] | None = None
    ) -> bool:
        changed = False
        at = message["timestamp"]
        if self.first.matches(message, event) and at > (state.get("a") or ""):
            state["a"], changed = at, True
        if self.then.matches(message, event) and at > (state.get("b") or ""):
            state["b"], changed = at, True
        return changed

    def holds(self, state: State | None, doc: Mapping[str, Any], now: datetime) -> bool:
        a, b = (state or {}).get("a"), (state or {}).get("b")
        if a is None or (b is not None and b >= a):
            return False
        return _ts(a) + self.within <= now

    def due(self, state: State | None, doc: Mapping[str, Any], now: datetime) -> datetime | None:
        a, b = (state or {}).get("a"), (state or {}).get("b")
        if a is None or (b is not None and b >= a):
            return None
        moment = _ts(a) + self.within
        return moment if moment > now else None

    def judge(
        self, state: State | None, doc: Mapping[str, Any], now: datetime
    ) -> tuple[bool, datetime | None]:
        if not state:
            return False, None
        a, b = state.get("a"), state.get("b")
        if a is None or (b is not None and b >= a):
            return False, None
        moment = _ts(a) + self.within
        return (True, None) if moment <= now else (False, moment)


class RelativeTime(Clause):
    """``{"computed.last_seen": {"$olderThan": "14d"}}``: a profile timestamp against now."""

    kind = "$time"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.path = spec["path"].split(".")
        self.time_op = spec["op"]
        self.age = parse_duration(spec["age"])

    def _value(self, doc: Mapping[str, Any]) -> str | None:
        value: Any = doc
        for part in self.path:
            value = value.get(part) if type(value) is dict or isinstance(value, Mapping) else None
        return value if isinstance(value, str) else None

    def holds(self, state: State | None, doc: Mapping[str, Any], now: datetime) -> bool:
        return _time_test(self.time_op, self._value(doc), self.age, now)

    def due(self, state: State | None, doc: Mapping[str, Any], now: datetime) -> datetime | None:
        return _time_due(self._value(doc), self.age, now)

    def judge(
        self, state: State | None, doc: Mapping[str, Any], now: datetime
    ) -> tuple[bool, datetime | None]:
        at = self._value(doc)
        if at is None:
            return False, None
        try:
            moment = _ts(at) + self.age
        except (ValueError, OverflowError):  # not a time, or a time near year 9999
            return False, None
        later = moment if moment > now else None
        return (moment <= now if self.time_op == "$olderThan" else moment > now), later


def _time_test(op: str, at: str | None, age: timedelta, now: datetime) -> bool:
    if at is None:
        return False
    try:
        moment = _ts(at) + age
    except (ValueError, OverflowError):  # not a time, or a time near year 9999
        return False
    return moment <= now if op == "$olderThan" else moment > now


def _time_due(at: str | None, age: timedelta, now: datetime) -> datetime | None:
    if at is None:
        return None
    try:
        moment = _ts(at) + age
    except (ValueError, OverflowError):  # not a time, or a time near year 9999
        return None
    return moment if moment > now else None


def _filter(spec: Mapping[str, Any]) -> EventFilter:
    names = spec.get("name")
    types = spec.get("type")
    where = spec.get("where")
    return EventFilter(
        frozenset([names] if isinstance(names, str) else names or ()),
        frozenset([types] if isinstance(types, str) else types or ()),
        compile_condition(where).predicate if where else None,
    )


# -- parsing and validation -------------------------------------------------------------------
FLAG_ROOT = "_b"


@dataclass
class Parsed:
    """A condition with its behavioural clauses replaced by flags ``_b.<clause id>``."""

    condition: dict[str, Any]
    clauses: dict[str, Clause]
    problems: list[Problem]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check_filter(spec: Any, where: str, problems: list[Problem]) -> None:
    if not isinstance(spec, Mapping):
        problems.append(
            Problem(
                where,
                f'an event filter is an object like {{"name": '
                f'"Product Viewed"}}; got {describe(spec)}',
            )
        )
        return
    unknown = set(spec) - {"name", "type", "where"}
    if unknown:
        problems.append(
            Problem(where, f"unknown filter field(s) {sorted(unknown)}; use name, type and where")
        )
    if "name" not in spec and "type" not in spec:
        problems.append(
            Problem(
                where,
                'say which events: "name" (a track event name or a '
                'list of them) or "type" (page, screen, identify, ...)',
            )
        )
    for field in ("name", "type"):
        value = spec.get(field)
        if value is not None and not (
            (isinstance(value, str) and value)
            or (isinstance(value, list) and value and all(isinstance(v, str) for v in value))
        ):
            problems.append(
                Problem(
                    _join(where, field),
                    f"needs a non-empty string or list of strings; got {describe(value)}",
                )
            )
    if "where" in spec:
        known = lambda path: path.split(".")[0] in EVENT_ROOTS  # noqa: E731
        for p in validate_condition(spec["where"], known_paths=known):
            problems.append(Problem(_join(_join(where, "where"), p.field), p.message))


def _check_duration(
    spec: Mapping[str, Any], key: str, where: str, problems: list[Problem], required: bool
) -> None:
    if key not in spec:
        if required:
            problems.append(Problem(where, f'"{key}" is required, e.g. "{key}": "24h"'))
        return
    try:
        parse_duration(spec[key])
    except ValueError as exc:
        problems.append(Problem(_join(where, key), str(exc)))


def _check_value_op(op: Any, where: str, problems: list[Problem]) -> None:
    if isinstance(op, int | float) and not isinstance(op, bool):
        return
    for p in validate_condition({"v": op}):
        field = p.field[1:].lstrip(".") if p.field.startswith("v") else p.field
        problems.append(Problem(_join(where, field), p.message))


def _check_event(spec: Any, where: str, problems: list[Problem]) -> None:
    if not isinstance(spec, Mapping):
        problems.append(
            Problem(
                where,
                f'"$event" needs an object like {{"name": "Product '
                f'Viewed", "within": "7d", "count": {{"$gte": 3}}}}; got '
                f"{describe(spec)}",
            )
        )
        return
    _check_filter(
        {k: v for k, v in spec.items() if k in ("name", "type", "where")}, where, problems
    )
    unknown = set(spec) - {"name", "type", "where", "within", *_MEASURES}
    if unknown:
        problems.append(
            Problem(
                where,
                f"unknown field(s) {sorted(unknown)}; an $event takes "
                "name/type, where, within and one of " + ", ".join(_MEASURES),
            )
        )
    _check_duration(spec, "within", where, problems, required=False)
    measures = [m for m in _MEASURES if m in spec]
    if len(measures) > 1:
        problems.append(Problem(where, f"give one measure, not {measures}"))
        return
    if not measures or measures[0] == "count":
        if measures:
            _check_value_op(spec["count"], _join(where, "count"), problems)
        return
    measure = measures[0]
    value = spec[measure]
    field = _join(where, measure)
    if measure in ("sum", "distinct"):
        if not isinstance(value, Mapping) or not isinstance(value.get("property"), str):
            problems.append(
                Problem(
                    field,
                    f'"{measure}" needs {{"property": "<name>", '
                    f'"value": {{"$gte": 100}}}}; got {describe(value)}',
                )
            )
            return
        if "value" in value:
            _check_value_op(value["value"], _join(field, "value"), problems)
        return
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in TIME_OPS:
        problems.append(
            Problem(
                field,
                f'"{measure}" needs {{"$olderThan": "14d"}} or '
                f'{{"$newerThan": "7d"}}; got {describe(value)}',
            )
        )
        return
    ((op, amount),) = value.items()
    try:
        parse_duration(amount)
    except ValueError as exc:
        problems.append(Problem(_join(field, op), str(exc)))
    if "within" in spec:
        problems.append(
            Problem(
                _join(where, "within"),
                f'"within" does not apply to "{measure}"; the age is the window',
            )
        )


def _check_sequence(spec: Any, where: str, problems: list[Problem]) -> None:
    if not isinstance(spec, Mapping):
        problems.append(
            Problem(
                where,
                '"$sequence" needs {"first": {...}, "notFollowedBy": '
                f'{{...}}, "within": "24h"}}; got {describe(spec)}',
            )
        )
        return
    unknown = set(spec) - {"first", "notFollowedBy", "within"}
    if unknown:
        problems.append(
            Problem(
                where,
                f"unknown field(s) {sorted(unknown)}; a $sequence takes "
                "first, notFollowedBy and within",
            )
        )
    for key in ("first", "notFollowedBy"):
        if key not in spec:
            problems.append(Problem(where, f'"{key}" is required (an event filter)'))
        else:
            _check_filter(spec[key], _join(where, key), problems)
    _check_duration(spec, "within", where, problems, required=True)


def parse(condition: Any, where: str = "") -> Parsed:
    """Split behavioural clauses out of a condition and validate them (GrowthBook parts later)."""
    clauses: dict[str, Clause] = {}
    problems: list[Problem] = []

    def walk(node: Any, at: str) -> Any:
        if not isinstance(node, Mapping):
            return node
        out: dict[str, Any] = {}
        extra: list[dict[str, Any]] = []
        for key, value in node.items():
            field = _join(at, key) if isinstance(key, str) else at
            if key in ("$and", "$or", "$nor") and isinstance(value, list):
                out[key] = [walk(v, f"{field}[{i}]") for i, v in enumerate(value)]
            elif key == "$not":
                out[key] = walk(value, field)
            elif key in ("$event", "$sequence"):
                before = len(problems)
                (_check_event if key == "$event" else _check_sequence)(value, field, problems)
                if len(problems) == before:
                    clause: Clause = EventAggregate(value) if key == "$event" else Sequence(value)
                    clauses[clause.id] = clause
                    extra.append({f"{FLAG_ROOT}.{clause.id}": True})
            elif isinstance(value, Mapping) and any(op in value for op in TIME_OPS):
                rest = {k: v for k, v in value.items() if k not in TIME_OPS}
                for op in TIME_OPS:
                    if op not in value:
                        continue
                    try:
                        parse_duration(value[op])
                    except ValueError as exc:
                        problems.append(Problem(_join(field, op), str(exc)))
                        continue
                    clause = RelativeTime({"path": key, "op": op, "age": value[op]})
                    clauses[clause.id] = clause
                    extra.append({f"{FLAG_ROOT}.{clause.id}": True})
                if rest:
                    out[key] = rest
            else:
                out[key] = value
        if extra:
            if not out:
                return extra[0] if len(extra) == 1 else {"$and": extra}
            return {"$and": [out, *extra]}
        return out

    rewritten = walk(condition, where)
    return Parsed(rewritten if isinstance(rewritten, dict) else condition, clauses, problems)
