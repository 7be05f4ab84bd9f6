"""Segments as a user sees them: save, list, dry-run, export, size over time, templates.

The API, the CLI and ``personify apply`` all go through :class:`Segments`, so they validate
and answer alike. Work that needs the event history (dry runs and rebuilds) runs where the
segment engine runs: in this process in embedded mode, in the processing worker behind
``personify serve``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from personify.definitions import Definition
from personify.errors import Conflict, InvalidInput, Problem, Unavailable
from personify.facade import Personify
from personify.profiles.records import iso
from personify.segments.behavior import parse_duration
from personify.segments.definition import KIND, validate
from personify.segments.templates import describe_templates, template

MAX_SQLITE_INT = 2**63 - 1
"""The largest version, offset or sequence number a store (SQLite) can hold."""


def _bounded(name: str, value: int, low: int) -> None:
    if not low <= value <= MAX_SQLITE_INT:
        raise InvalidInput(
            f"{name} must be between {low} and {MAX_SQLITE_INT}; got {value}",
            problems=[Problem(name, f"must be between {low} and {MAX_SQLITE_INT}")],
        )


def _invalid(problems: list[Any]) -> InvalidInput:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return InvalidInput(
        f"invalid segment: {first.field}: {first.message}{more}",
        hint="fix each listed problem and save again; dry-run it first with "
        "POST /v1/segments/dry-run or `personify segments dry-run`",
        problems=problems,
    )


class Segments:
    def __init__(self, p: Personify) -> None:
        self.p = p
        self.store = p.stores.segments
        self.definitions = p.stores.definitions

    # -- definitions ----------------------------------------------------------------------
    def known_keys(self) -> set[str]:
        return {d.key for d in self.definitions.list(KIND)}

    def check(self, body: Any, key: str | None = None) -> dict[str, Any]:
        if isinstance(body, Mapping) and key is not None:
            if body.get("key") not in (None, key):
                raise InvalidInput(
                    f"the body's key {body.get('key')!r} differs from {key!r} in the path",
                    hint="leave key out of the body or make them equal",
                )
            body = {**body, "key": key}
        known = self.known_keys() | ({body.get("key")} if isinstance(body, Mapping) else set())
        problems = validate(body, known_segments={k for k in known if isinstance(k, str)})
        if problems:
            raise _invalid(problems)
        assert isinstance(body, Mapping)
        return dict(body)

    def save(self, body: Any, actor: str, key: str | None = None, message: str = "") -> Definition:
        checked = self.check(body, key)
        stored = {k: v for k, v in checked.items() if k != "key"}  # the key names the entry
        saved = self.definitions.put(KIND, checked["key"], stored, actor=actor, message=message)
        self._nudge()
        return saved

    def delete(self, key: str, actor: str) -> Definition:
        self.get(key)
        gone = self.definitions.delete(KIND, key, actor=actor)
        self._nudge()
        return gone

    def rollback(self, key: str, version: int, actor: str) -> Definition:
        _bounded("version", version, 1)
        done = self.definitions.rollback(KIND, key, version, actor=actor)
        self._nudge()
        return done

    def _nudge(self) -> None:
        """In embedded mode apply the change now; the worker picks it up within a second."""
        if self.p.segment_engine is not None:
            self.p.segment_engine.reload()

    def get(self, key: str) -> Definition:
        return self.definitions.get(KIND, key)

    def describe(self, d: Definition) -> dict[str, Any]:
        sizes = self.store.sizes()
        return {
            "key": d.key,
            **d.body,
            "kind": d.body.get("kind", "dynamic"),
            "version": d.version,
            "updated_by": d.actor,
            "updated_at": d.created_at,
            "size": sizes.get(d.key, 0),
        }

    def overview(self) -> list[dict[str, Any]]:
        sizes = self.store.sizes()
        return [
            {
                "key": d.key,
                "name": d.body.get("name", d.key),
                "kind": d.body.get("kind", "dynamic"),
                "version": d.version,
                "size": sizes.get(d.key, 0),
                "updated_at": d.created_at,
            }
            for d in self.definitions.list(KIND)
        ]

    def versions(self, key: str) -> list[dict[str, Any]]:
        return [d.as_dict() for d in self.definitions.history(KIND, key)]

    # -- work on the data -----------------------------------------------------------------
    def dry_run(self, body: Any, sample: int = 10) -> dict[str, Any]:
        if not 0 <= sample <= 1000:
            raise InvalidInput("sample must be between 0 and 1000")
        checked = self.check({"key": "dry_run", "name": "dry run", **dict(body)})
        if self.p.segment_engine is not None:
            return self.p.segment_engine.dry_run(checked, sample)
        return dict(self._remote("segments_dry_run", checked, sample))

    def rebuild(self, keys: Sequence[str] | None = None) -> dict[str, int]:
        """Rebuild the named segments, or every one when ``keys`` is None (not when empty)."""
        if keys is not None and not keys:
            raise InvalidInput(
                "keys is an empty list: no segment to rebuild",
                hint="name the segments to rebuild, or leave keys out to rebuild all of them",
                problems=[Problem("keys", "must name at least one segment, or be left out")],
            )
        for key in keys or ():
            self.get(key)
        if self.p.segment_engine is not None:
            return self.p.segment_engine.rebuild(list(keys) if keys else None)
        return dict(self._remote("segments_rebuild", list(keys) if keys else None))

    def _remote(self, method: str, *args: Any) -> Any:
        call = getattr(self.p.stores.events, "call", None)
        if call is None:
            raise Unavailable("no segment engine is running", hint="start `personify serve`")
        return call(method, *args)

    def members(self, key: str, limit: int | None = 100, offset: int = 0) -> list[dict[str, Any]]:
        if limit is not None:
            _bounded("limit", limit, 0)
        _bounded("offset", offset, 0)
        self.get(key)
        return self.store.members(key, limit, offset)

    def export(self, key: str, fmt: str) -> bytes:
        """All current members with their main identities, as CSV or Parquet bytes."""
        if fmt not in ("csv", "parquet"):
            raise InvalidInput(f"unknown export format {fmt!r}", hint="use csv or parquet")
        rows = self.members(key, None)
        docs: dict[str, dict[str, Any]] = {}
        ids = [r["profile_id"] for r in rows]
        for i in range(0, len(ids), 1000):
            docs.update(self.p.stores.profiles.get_many(ids[i : i + 1000]))
        table = {
            "profile_id": ids,
            "entered_at": [r["entered_at"] for r in rows],
            "user_id": [_first(docs.get(pid), "user_id") for pid in ids],
            "email": [_first(docs.get(pid), "email") for pid in ids],
            "anonymous_id": [_first(docs.get(pid), "anonymous_id") for pid in ids],
        }
        if fmt == "parquet":
            out = io.BytesIO()
            pq.write_table(pa.table(table), out)
            return out.getvalue()
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(list(table))
        writer.writerows(zip(*table.values(), strict=True))
        return text.getvalue().encode()

    def size_over_time(
        self, key: str, start: str | None = None, end: str | None = None, every: str = "1d"
    ) -> list[dict[str, Any]]:
        self.get(key)
        try:
            step = parse_duration(every)
        except ValueError as exc:
            raise InvalidInput(f"every: {exc}") from None
        stop = _when(end, "end") if end else self.p.clock.now()
        first = self.store.first_entry(key)
        begin = _when(start, "start") if start else _when(first, "start") if first else stop
        if begin > stop:
            raise InvalidInput("start is after end", hint="swap them")
        if (stop - begin) / step > 1000:
            raise InvalidInput(
                "more than 1000 points asked", hint="use a larger every= or a shorter range"
            )
        points: list[str] = []
        moment = begin
        while moment < stop:
            points.append(iso(moment))
            moment += step
        points.append(iso(stop))
        return self.store.size_over_time(key, points)

    def freeze(self, key: str, new_key: str, actor: str) -> Definition:
        """Save today's members of a segment as a static list under ``new_key``."""
        source = self.get(key)
        if new_key in self.known_keys():
            raise Conflict(
                f"segment {new_key!r} exists; freezing {key!r} into it would overwrite it",
                hint="freeze into a new key, e.g. "
                f"{key}_{iso(self.p.clock.now())[:10].replace('-', '')}, "
                "or delete the existing segment first",
            )
        members = [m["profile_id"] for m in self.store.members(key, None)]
        if not members:
            raise InvalidInput(f"{key!r} has no members to freeze", hint="check its size first")
        name = source.body.get("name", key)
        body = {
            "key": new_key,
            "name": f"{name} (frozen {iso(self.p.clock.now())[:10]})",
            "description": f"Members of {key} v{source.version} when frozen",
            "kind": "static",
            "members": {"profile_id": members},
        }
        return self.save(body, actor)

    def templates(self) -> list[dict[str, Any]]:
        return describe_templates()

    def from_template(
        self, name: str, actor: str, key: str | None = None, params: Mapping[str, Any] | None = None
    ) -> Definition:
        return self.save(template(name, key, **dict(params or {})), actor)


def _first(doc: Mapping[str, Any] | None, kind: str) -> str | None:
    values = ((doc or {}).get("identities") or {}).get(kind) or []
    return str(values[0]) if values else None


def _when(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{name}: {text!r} is not an ISO-8601 time", hint='e.g. "2024-05-01T00:00:00Z"'
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name}: give a time zone", hint='e.g. "2024-05-01T00:00:00Z"')
    return moment
