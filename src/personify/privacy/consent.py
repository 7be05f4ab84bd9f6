"""Consent per purpose: an append-only history and the one policy that reads it.

Every change is a row (profile, purpose, granted, source, event time, wording version) that is
never updated; the current state of a purpose is its latest row by event time. Before a
person says anything, the default of their region applies (``privacy.consent_defaults``):
``true`` is an opt-out purpose, ``false`` an opt-in one.

Consent arrives three ways, all recorded here:

- the API (``POST /v1/consent``) and the CLI, with the source ``api`` or ``cli``;
- an ``identify`` whose traits hold a ``consent`` object, for example
  ``{"consent": {"marketing_email": true, "analytics": false, "version": "2026-03"}}``, or
  flat ``consent_<purpose>`` traits (true/false, yes/no, 1/0) and ``consent_version``, which
  is how a customer table imported with ``personify import customers`` carries them;
- a ``Consent Updated`` track event from a consent-management platform, with
  ``properties: {"purposes": {"personalization": false}, "version": "2026-03"}`` (the
  purposes may also be given directly as properties).

:meth:`ConsentPolicy.may` is the single question every caller asks: "may purpose P use this
profile now?". Decisions, model scoring and training, email actions and the profile view's
``consent`` map all go through it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from personify.errors import InvalidInput, Problem
from personify.privacy.db import Db
from personify.storage.ports import ProfileStore

PURPOSES = ("analytics", "personalization", "marketing_email", "marketing_push", "profiling")
CONSENT_EVENT = "Consent Updated"
_VERSION_KEYS = ("version", "wording_version")
_FLAT_KEYS = tuple((p, f"consent_{p}") for p in PURPOSES)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS consent_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    granted INTEGER NOT NULL,
    source TEXT NOT NULL,
    at TEXT NOT NULL,
    wording_version TEXT,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS consent_profile ON consent_history(profile_id, purpose, at);
CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, "offset" INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Decision:
    """The answer of the policy: allowed or not, and why (shown in ``reasons``)."""

    allowed: bool
    reason: str


@dataclass(frozen=True)
class ConsentChange:
    purpose: str
    granted: bool
    source: str
    at: str
    wording_version: str | None = None


def parse_purposes(raw: object, field: str) -> dict[str, bool]:
    """``{purpose: bool}`` from user input, or :class:`InvalidInput` naming each bad entry."""
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidInput(
            f"{field} must be an object of purposes",
            hint=f'for example {{"marketing_email": true}}; purposes: {", ".join(PURPOSES)}',
            problems=[Problem(field, "a non-empty object {purpose: true|false}")],
        )
    problems = [
        Problem(f"{field}.{k}", f"unknown purpose; use one of {', '.join(PURPOSES)}")
        for k in raw
        if k not in PURPOSES
    ]
    problems += [
        Problem(f"{field}.{k}", "must be true or false")
        for k, v in raw.items()
        if k in PURPOSES and not isinstance(v, bool)
    ]
    if problems:
        raise InvalidInput("invalid consent", problems=problems, hint="send true or false")
    return {str(k): bool(v) for k, v in raw.items()}


def check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise InvalidInput(
            f"unknown purpose {purpose!r}",
            hint=f"use one of {', '.join(PURPOSES)}",
            problems=[Problem("purpose", "unknown purpose")],
        )
    return purpose


def changes_in_message(message: Mapping[str, Any]) -> list[ConsentChange]:
    """Consent changes carried by a processed message (identify trait or consent event).

    Events are data from clients: unknown purposes and non-boolean values are ignored here
    rather than failing the pipeline (the API validates strictly).
    """
    raw: object = None
    if message.get("type") == "identify":
        traits = message.get("traits")
        raw = traits.get("consent") if isinstance(traits, Mapping) else None
        if raw is None and isinstance(traits, Mapping):
            raw = _flat_consent(traits)
    elif message.get("type") == "track" and message.get("event") == CONSENT_EVENT:
        props = message.get("properties")
        if isinstance(props, Mapping):
            raw = props.get("purposes", props)
            if isinstance(raw, Mapping) and raw is not props:
                raw = {**raw, **{k: props[k] for k in _VERSION_KEYS if k in props}}
    if not isinstance(raw, Mapping):
        return []
    version = next((str(raw[k]) for k in _VERSION_KEYS if raw.get(k) is not None), None)
    meta = message.get("_meta")
    source = str(meta.get("source", "events")) if isinstance(meta, Mapping) else "events"
    at = str(message.get("timestamp") or datetime.now(UTC).isoformat())
    return [
        ConsentChange(k, v, source, at, version)
        for k, v in raw.items()
        if k in PURPOSES and isinstance(v, bool)
    ]


_YES = {"true", "yes", "y", "1", "granted", "opt-in", "opt_in"}
_NO = {"false", "no", "n", "0", "refused", "denied", "opt-out", "opt_out"}


def _flat_consent(traits: Mapping[str, Any]) -> dict[str, Any] | None:
    """Consent as flat columns, as imports of customer tables carry it:
    ``consent_<purpose>`` with true/false, yes/no or 1/0, and ``consent_version``."""
    out: dict[str, Any] = {}
    for purpose, key in _FLAT_KEYS:
        value = traits.get(key)
        if isinstance(value, bool):
            out[purpose] = value
        elif isinstance(value, int | float | str):
            text = str(value).strip().lower()
            if text in _YES or text in _NO:
                out[purpose] = text in _YES
    if out and traits.get("consent_version") is not None:
        out["version"] = traits["consent_version"]
    return out or None


class ConsentStore:
    """The append-only consent history (``consent.sqlite``, or memory)."""

    def __init__(self, path: Path | None) -> None:
        # Written once per processed batch (with the observer checkpoint): NORMAL skips the
        # fsync per commit; a power cut loses whole transactions, which are then replayed.
        self._db = Db(path, _SCHEMA, synchronous="NORMAL")
        # Profile ids with any recorded choice, per purpose, and the last row id read.
        self._with_choices: dict[str, tuple[int, frozenset[str]]] = {}
        self._with_lock = threading.Lock()

    def with_choices(self, purpose: str) -> frozenset[str]:
        """The profile ids with a recorded ``purpose`` choice (possibly some since erased).

        Kept in memory and topped up from the rows added since the last call (ids only grow,
        in this process or another), so the processing worker can skip the history query
        for the many batches whose people never made a choice.
        """
        with self._with_lock:
            last, ids = self._with_choices.get(purpose, (0, frozenset()))
            rows = self._db.query(
                "SELECT id, profile_id FROM consent_history WHERE id > ? AND purpose = ?",
                (last, purpose),
            )
            if rows:
                ids = ids | {pid for _, pid in rows}  # a new frozenset: callers share it
                last = max(row_id for row_id, _ in rows)
            self._with_choices[purpose] = (last, ids)
            return ids

    def record(
        self,
        entries: Iterable[tuple[str, ConsentChange]],
        checkpoint: tuple[str, int] | None = None,
    ) -> int:
        now = datetime.now(UTC).isoformat()
        rows = [
            (pid, c.purpose, int(c.granted), c.source, c.at, c.wording_version, now)
            for pid, c in entries
        ]
        with self._db.durable(checkpoint is None), self._db.tx() as con:
            con.executemany(
                "INSERT INTO consent_history (profile_id, purpose, granted, source, at, "
                "wording_version, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if checkpoint is not None:
                con.execute(
                    'INSERT INTO checkpoints (name, "offset") VALUES (?, ?) ON CONFLICT (name) '
                    'DO UPDATE SET "offset" = excluded."offset"',
                    checkpoint,
                )
        return len(rows)

    def checkpoint(self, name: str) -> int:
        rows = self._db.query('SELECT "offset" FROM checkpoints WHERE name = ?', (name,))
        return int(rows[0][0]) if rows else 0

    def history(self, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
        if not profile_ids:
            return []
        marks = ", ".join("?" for _ in profile_ids)
        rows = self._db.query(
            "SELECT profile_id, purpose, granted, source, at, wording_version, recorded_at "
            f"FROM consent_history WHERE profile_id IN ({marks}) ORDER BY at, id",
            profile_ids,
        )
        keys = ("profile_id", "purpose", "granted", "source", "at", "wording_version")
        out = []
        for row in rows:
            item = dict(zip((*keys, "recorded_at"), row, strict=True))
            item["granted"] = bool(item["granted"])
            out.append(item)
        return out

    def latest(self, profile_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The latest change of each purpose over these profile ids (a merged person)."""
        out: dict[str, dict[str, Any]] = {}
        for item in self.history(profile_ids):  # ordered by event time: later rows win
            out[item["purpose"]] = item
        return out

    def latest_of_purpose(self, purpose: str) -> dict[str, tuple[tuple[str, int], bool]]:
        """``{profile_id: ((at, row id), granted)}``: each profile's latest change of one
        purpose (comparable, so the latest over merged profiles is the ``max``)."""
        out: dict[str, tuple[tuple[str, int], bool]] = {}
        rows = self._db.query(
            "SELECT profile_id, at, id, granted FROM consent_history WHERE purpose = ? "
            "ORDER BY at, id",
            (purpose,),
        )
        for pid, at, row_id, granted in rows:
            out[pid] = ((at, row_id), bool(granted))
        return out

    def latest_of_purpose_for(
        self, purpose: str, profile_ids: Sequence[str]
    ) -> dict[str, tuple[tuple[str, int], bool]]:
        """:meth:`latest_of_purpose` restricted to some profile ids (one indexed query; the
        processing worker asks this for every batch)."""
        out: dict[str, tuple[tuple[str, int], bool]] = {}
        if not profile_ids:
            return out
        rows = self._db.query(
            "SELECT profile_id, at, id, granted FROM consent_history WHERE purpose = ? "
            "AND profile_id IN (SELECT value FROM json_each(?)) ORDER BY at, id",
            (purpose, orjson.dumps(list(profile_ids)).decode()),
        )
        for pid, at, row_id, granted in rows:
            out[pid] = ((at, row_id), bool(granted))
        return out

    def delete_profiles(self, profile_ids: Sequence[str]) -> int:
        with self._db.tx() as con:
            return sum(
                con.execute("DELETE FROM consent_history WHERE profile_id = ?", (pid,)).rowcount
                for pid in profile_ids
            )

    def close(self) -> None:
        self._db.close()


class ConsentPolicy:
    """Answers "may purpose P use this profile now?" from the history and regional defaults."""

    def __init__(
        self,
        store: ConsentStore,
        defaults: Mapping[str, Mapping[str, bool]],
        regions: Mapping[str, Sequence[str]],
        profiles: ProfileStore,
    ) -> None:
        self.store = store
        self._defaults = defaults
        self._region_of = {c.upper(): r for r, codes in regions.items() for c in codes}
        self._profiles = profiles

    def region(self, profile: Mapping[str, Any]) -> str:
        traits = profile.get("traits") or {}
        address = _value(traits.get("address"))
        country = _value(traits.get("country")) or (
            address.get("country") if isinstance(address, Mapping) else None
        )
        if isinstance(country, str):
            return self._region_of.get(country.strip().upper(), "default")
        return "default"

    def _default(self, region: str, purpose: str) -> bool:
        table = self._defaults.get(region) or self._defaults.get("default") or {}
        return bool(table.get(purpose, False))

    def _live_docs(self, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """``{asked id: live document}``, following merges to the survivor."""
        out: dict[str, Mapping[str, Any]] = {}
        pending = {pid: pid for pid in ids}  # current id -> asked id
        for _ in range(64):
            if not pending:
                break
            docs = self._profiles.get_many(list(pending))
            nxt: dict[str, str] = {}
            for cur, asked in pending.items():
                doc = docs.get(cur)
                if doc is None:
                    continue
                if doc.get("merged_into"):
                    nxt[str(doc["merged_into"])] = asked
                else:
                    out[asked] = doc
            pending = nxt
        return out

    def _profile(self, profile: Mapping[str, Any] | str) -> Mapping[str, Any] | None:
        if isinstance(profile, str):
            return self._live_docs([profile]).get(profile)
        return profile

    def current(self, profile: Mapping[str, Any]) -> dict[str, bool]:
        """``{purpose: allowed}`` for every purpose (the profile view's ``consent``)."""
        latest = self.store.latest(_ids(profile))
        region = self.region(profile)
        return {
            p: bool(latest[p]["granted"]) if p in latest else self._default(region, p)
            for p in PURPOSES
        }

    def may(self, purpose: str, profile: Mapping[str, Any] | str) -> Decision:
        """Whether ``purpose`` may use this profile (a view or document, or a profile id)."""
        check_purpose(purpose)
        doc = self._profile(profile)
        if doc is None:  # events of a profile the store does not hold: no region known
            doc = {"profile_id": str(profile)}
        latest = self.store.latest(_ids(doc)).get(purpose)
        if latest is not None:
            verb = "granted" if latest["granted"] else "refused"
            return Decision(
                bool(latest["granted"]),
                f"{purpose}: {verb} via {latest['source']} at {latest['at']}",
            )
        region = self.region(doc)
        allowed = self._default(region, purpose)
        mode = "opt-out, allowed until refused" if allowed else "opt-in, not yet given"
        return Decision(allowed, f"{purpose}: no choice recorded; region {region} is {mode}")

    def allowed(self, purpose: str, profile_ids: Iterable[str]) -> set[str]:
        """The ids among ``profile_ids`` that ``purpose`` may use: :meth:`may` for many
        profiles at once (model scoring and training sets), reading the history once."""
        check_purpose(purpose)
        ids = list(dict.fromkeys(profile_ids))
        latest = self.store.latest_of_purpose(purpose)
        out: set[str] = set()
        for i in range(0, len(ids), 1000):
            chunk = ids[i : i + 1000]
            docs = self._live_docs(chunk)
            for pid in chunk:
                doc = docs.get(pid) or {"profile_id": pid}  # unknown: the default region
                found = [latest[x] for x in _ids(doc) if x in latest]
                if max(found)[1] if found else self._default(self.region(doc), purpose):
                    out.add(pid)
        return out

    def refusing(
        self,
        purpose: str,
        docs: Mapping[str, Mapping[str, Any]],
        changes: Mapping[str, bool] | None = None,
    ) -> set[str]:
        """The ids among ``docs`` (live profile documents by id) that ``purpose`` may NOT
        use: :meth:`allowed` for documents already in hand. ``changes`` holds choices not
        yet recorded (``{id: granted}``, from messages being processed): they win."""
        check_purpose(purpose)
        changes = changes or {}
        # The processing worker asks this for every batch: plain loops, one query.
        chose = self.store.with_choices(purpose)
        by_region: dict[str, bool] = {}
        # (with no recorded choice at all, the regional defaults decide: no ids to gather)
        owned = {pid: _ids(doc) if chose else () for pid, doc in docs.items() if pid not in changes}
        asked = {x for mine in owned.values() for x in mine if x in chose}
        latest = self.store.latest_of_purpose_for(purpose, list(asked)) if asked else {}
        out = {pid for pid, granted in changes.items() if not granted and pid in docs}
        for pid, mine in owned.items():
            found = [latest[x] for x in mine if x in latest] if latest else None
            if found:
                allowed = max(found)[1]
            else:
                region = self.region(docs[pid])
                if region not in by_region:
                    by_region[region] = self._default(region, purpose)
                allowed = by_region[region]
            if not allowed:
                out.add(pid)
        return out


def _value(trait: object) -> object:
    """A trait's value: profile documents keep ``{"value", "source", "at"}`` per trait."""
    if (
        (type(trait) is dict or isinstance(trait, Mapping))
        and "value" in trait
        and "source" in trait
    ):
        return trait["value"]
    return trait


def _ids(profile: Mapping[str, Any]) -> list[str]:
    merged = profile.get("merged_from")
    if not merged:
        return [str(profile["profile_id"])]
    return [str(profile["profile_id"]), *(str(x) for x in merged)]
