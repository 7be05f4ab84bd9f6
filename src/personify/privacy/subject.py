"""Rights of the data subject: export everything held about a person, or erase it.

A person is named by one identity (``user_id``, ``anonymous_id``, ``email`` or ``phone``);
the live profile it resolves to and every profile merged into it are the person.

Erasure, in order (each step safe to repeat, so a failed job can simply be run again):

1. the person's identities go on the suppression list (HMAC pseudonyms), so events that
   arrive from now on are dropped at the collector;
2. processing is drained, so nothing of theirs is still in flight, and the person is
   resolved again (a late event may have added an identity);
3. their events are deleted from the event store (in the worker process under ``serve``)
   and the same messages' payloads in the durable log are replaced by tombstones;
4. quarantined items naming any of their identifiers are blanked (and, after step 5,
   items naming identifiers only step 5 found);
5. profiles, identity keys, merges and conflicts, cached views, segment memberships and
   history, scores, consent history, decision logs and experiment units are deleted (with
   any profile that merged one of theirs while this ran, or that one of theirs merged: it
   is theirs now);
6. the SQLite files are rebuilt (``privacy.vacuum_after_erase``) so deleted bytes leave disk.

Each job writes an audit record naming the subject only by pseudonym.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from personify.errors import InvalidInput, NotFound, PersonifyError, Problem
from personify.identity.normalize import normalize_email, normalize_phone
from personify.privacy.db import scrub
from personify.privacy.pii import classify

if TYPE_CHECKING:
    from personify.facade import Personify

SUBJECT_FIELDS = {
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "email": "email",
    "phone": "phone",
}
_EVENT_LIMIT = 1_000_000
# Satellite SQLite files other features keep under the data dir: (file, table, column, ids).
# "profiles" matches profile ids, "units" matches profile ids and anonymous/user ids as the
# decision and experiment stores key visitors (``anon:<anonymousId>``).
_SATELLITES = (
    ("decisions.sqlite", "rewards", "profile_id", "profiles"),
    ("decisions.sqlite", "decisions", "profile_id", "profiles"),
    ("decisions.sqlite", "decisions", "unit", "units"),
    ("decisions.sqlite", "dismissals", "unit", "units"),
    ("exposures.sqlite", "exposures", "unit", "units"),
    ("sticky.sqlite", "sticky_assignments", "value", "units"),
)
_SCRUBBED = (
    "state.sqlite",
    "log.sqlite",
    "quarantine.sqlite",
    "segments.sqlite",
    "scores.sqlite",
    "consent.sqlite",
    "decisions.sqlite",
    "exposures.sqlite",
    "sticky.sqlite",
)


def parse_subject(body: Mapping[str, Any]) -> tuple[str, str]:
    """The one ``(kind, value)`` a request names, or an error saying what to send."""
    given = {k: v for k, v in body.items() if k in SUBJECT_FIELDS and v not in (None, "")}
    if len(given) != 1:
        raise InvalidInput(
            f"name the person by exactly one identity (got {len(given)})",
            hint='for example {"userId": "u123"} or {"email": "ann@example.com"}',
            problems=[Problem("body", f"exactly one of {', '.join(SUBJECT_FIELDS)}")],
        )
    ((field, value),) = given.items()
    if not isinstance(value, str) or not value.strip() or len(value) > 1024:
        raise InvalidInput(
            f"{field} must be a non-empty string",
            hint='for example {"userId": "u123"}',
            problems=[Problem(field, "a non-empty string of at most 1024 characters")],
        )
    return SUBJECT_FIELDS[field], value.strip()


class Person:
    """Who a request is about: profile ids (live one first) and every identity they hold."""

    def __init__(self, kind: str, value: str) -> None:
        self.kind = kind
        self.value = value
        self.profile_ids: list[str] = []
        self.identities: set[tuple[str, str]] = set()
        self.doc: dict[str, Any] | None = None

    @property
    def units(self) -> list[str]:
        """Keys the decision and experiment stores may use for this person."""
        out = list(self.profile_ids)
        for kind, value in self.identities:
            if kind in ("anonymous_id", "user_id"):
                out += [value, f"anon:{value}"]
        return sorted(set(out))

    def raw_values(self) -> list[str]:
        return sorted({v for _, v in self.identities} | {self.value})


def _normalized(p: Personify, kind: str, value: str) -> str | None:
    if kind == "email":
        return normalize_email(value)
    if kind == "phone":
        return normalize_phone(value, p.settings.identity.default_phone_region)
    return value


def resolve(p: Personify, kind: str, value: str) -> Person:
    """The person an identity names (no profile is fine: then only the identity is known)."""
    person = Person(kind, value)
    key = _normalized(p, kind, value)
    if key is None:
        raise InvalidInput(
            f"{value!r} is not a valid {kind}",
            hint="send the identity as it was collected, e.g. ann@example.com or +14155550100",
            problems=[Problem(kind, "not a valid value")],
        )
    person.identities.add((kind, key))
    try:
        pid = p.lookup(kind, value)
    except NotFound:
        return person
    doc = p.profile(pid)  # the live profile's view: identities and merged_from
    person.doc = doc
    person.profile_ids = [str(doc["profile_id"]), *(str(x) for x in doc.get("merged_from", []))]
    for k, values in (doc.get("identities") or {}).items():
        person.identities.update((k, str(v)) for v in values)
    return person


# -- export -----------------------------------------------------------------------------
def export(p: Personify, kind: str, value: str) -> dict[str, Any]:
    """Everything held about a person, as JSON-ready data."""
    person = resolve(p, kind, value)
    ids = person.profile_ids
    if not ids:
        return {"found": False, "subject": {kind: value}}
    events = p.stores.events.timeline(ids, _EVENT_LIMIT, None)
    for row in events:
        payload = row.pop("payload", None)
        if payload is not None:
            message = orjson.loads(payload)
            message.pop("_meta", None)
            row["message"] = message
    assert p.privacy is not None
    profile = p.profile(ids[0])
    conf = p.settings.privacy
    return {
        "found": True,
        "subject": {kind: value},
        "profile": profile,
        # how each trait is treated (pii and sensitive ones are sealed at rest when enabled)
        "trait_classes": {
            name: classify(name, conf.pii_traits, conf.sensitive_traits)
            for name in profile.get("traits") or {}
        },
        "identities": person.doc.get("identities") if person.doc else {},
        "events": events,
        "consent_history": p.privacy.consent_store.history(ids),
        "segment_memberships": [
            {"profile_id": pid, **h} for pid in ids for h in p.stores.segments.history(pid)
        ],
        "scores": p.stores.scores.get_many(ids),
        "decisions": _satellite_rows(p.settings.data_dir, ids, p.settings.state_backend),
    }


def _satellite_rows(data: Path, ids: list[str], backend: str) -> list[dict[str, Any]]:
    path = data / "decisions.sqlite"
    if backend != "sqlite" or not path.exists():
        return []
    marks = ", ".join("?" for _ in ids)
    con = sqlite3.connect(str(path), timeout=30.0)
    try:
        con.row_factory = sqlite3.Row
        try:
            rows = con.execute(
                f"SELECT * FROM decisions WHERE profile_id IN ({marks}) ORDER BY at", ids
            ).fetchall()
        except sqlite3.OperationalError:  # no decisions table yet
            return []
        return [dict(r) for r in rows]
    finally:
        con.close()


# -- erasure ----------------------------------------------------------------------------
def erase(
    p: Personify,
    kind: str,
    value: str,
    *,
    suppress: bool = True,
    job_id: str | None = None,
) -> dict[str, int]:
    """Erase a person everywhere; returns what was removed, per store."""
    assert p.privacy is not None
    privacy = p.privacy
    person = resolve(p, kind, value)
    if suppress:
        privacy.suppression.add(person.identities, job_id)
    p.drain(timeout=120.0)
    person = resolve(p, kind, value)  # processing may have linked more identities
    if suppress:
        privacy.suppression.add(person.identities, job_id)
    ids = person.profile_ids
    out: dict[str, int] = {"profiles": 0, "events": 0, "log_messages": 0}
    if ids:
        message_ids = p.stores.events.delete_profiles(ids)
        out["events"] = len(message_ids)
        out["log_messages"] = p.stores.log.redact(message_ids)
    # Blanked now, while the profiles that name the identifiers exist: a job that fails
    # below and is run again could no longer find them.
    searched = set(person.raw_values())
    out["quarantined"] = _erase_quarantine(p, searched)
    suppressed = set(person.identities)
    forgotten: PersonifyError | None = None
    while ids:
        # A merge onto one of these moves the other profile's identity keys here (the
        # merged-away document keeps none): read them before the documents go.
        _add_identities(person, p.stores.profiles.get_many(ids).values())
        forgotten = _erase_profiles(p, ids, out) or forgotten
        ids = [*_absorbed_by(p, person), *_merged_into_them(p, person)]
        if suppress and not person.identities <= suppressed:
            privacy.suppression.add(person.identities - suppressed, job_id)
            suppressed |= person.identities
    found = set(person.raw_values()) - searched  # identifiers of profiles found above
    if found:
        out["quarantined"] += _erase_quarantine(p, found)
    p.stores.decisions.flush()  # buffered decisions reach the file before it is searched
    if p.settings.state_backend == "sqlite":
        out["satellite_rows"] = _erase_satellites(
            p.settings.data_dir, person.profile_ids, person.units
        )
        if p.settings.privacy.vacuum_after_erase:
            for name in _SCRUBBED:
                scrub(p.settings.data_dir / name)
    out["suppressed_identities"] = len(person.identities) if suppress else 0
    if forgotten is not None:
        raise forgotten
    return out


def _erase_profiles(p: Personify, ids: list[str], out: dict[str, int]) -> PersonifyError | None:
    """Delete the profiles and what hangs off them, adding the counts to ``out``; returns
    (rather than raises) a failure of processing to forget them."""
    assert p.privacy is not None
    count = {
        "profiles": p.stores.profiles.delete_profiles(ids),
        "events": 0,
        "log_messages": 0,
    }
    forgotten: PersonifyError | None = None
    # Processing (here, or in the worker under ``serve``) holds recent profiles in
    # memory: it must not write them back with the next message for this person (an
    # erasure without suppression lets that message in). From here on nothing new is
    # attributed to these ids; what was since the drain is deleted below. A failure
    # (a worker restarting) is raised once the rest of the erasure has run.
    try:
        p.processor.forget(ids)
    except PersonifyError as exc:
        forgotten = exc
    late = p.stores.events.delete_profiles(ids)
    if late:
        count["events"] = len(late)
        count["log_messages"] = p.stores.log.redact(late)
    for pid in ids:
        p.stores.cache.delete(pid)
    count["segment_rows"] = p.stores.segments.delete_profiles(ids)
    count["scores"] = p.stores.scores.delete_profiles(ids)
    count["consent_changes"] = p.privacy.consent_store.delete_profiles(ids)
    for key, n in count.items():
        out[key] = out.get(key, 0) + n
    return forgotten


def _absorbed_by(p: Personify, person: Person) -> list[str]:
    """Profiles that merged one of the person's while the erasure ran; they join the person.

    Until processing forgets the person's profiles, a message it lets in (an erasure without
    suppression) can name the person and another profile, and a merge copies the person's
    traits and identities onto that one. The message then counts as having come before the
    erasure: the profile that absorbed the person is theirs, with whatever it merged. It
    holds the person's identity keys, which is how it is found. Returns the ids not erased
    yet (added to ``person``); none once processing has forgotten every profile erased.
    """
    store = p.stores.profiles
    erased = set(person.profile_ids)
    found = set(store.lookup_many(person.identities).values())
    more: list[str] = []
    for pid, doc in store.get_many(found - erased).items():
        merged = [str(x) for x in doc.get("merged_from") or ()]
        if erased.intersection(merged):
            more += [pid, *merged]
            _add_identities(person, [doc])
    more = [pid for pid in dict.fromkeys(more) if pid not in erased]
    person.profile_ids += more
    return more


def _merged_into_them(p: Personify, person: Person) -> list[str]:
    """Profiles merged into one of the person's while the erasure ran; they join the person.

    The reverse of :func:`_absorbed_by`: the message let in made the person's profile the
    survivor and merged another one (an anonymous visitor's, say) into it. That profile is
    left holding its traits and events, pointing (``merged_into``) at a profile that is
    gone, and no identity key leads to it any more; by the same rule it is the person's.
    Returns the ids not erased yet (added to ``person``). Its identity keys moved to the
    person's profile, where :func:`erase` reads them just before deleting it; a merge that
    lands after that read leaves them unknown (to the quarantine search and the visitor-keyed
    satellite rows), though the profile and what hangs off it still go.
    """
    erased = set(person.profile_ids)
    more = [pid for pid in p.stores.profiles.merged_into(erased) if pid not in erased]
    person.profile_ids += more
    return more


def _add_identities(person: Person, docs: Iterable[Mapping[str, Any]]) -> None:
    for doc in docs:
        for kind, values in (doc.get("identities") or {}).items():
            person.identities.update((kind, str(v)) for v in values)


def _erase_quarantine(p: Personify, values: Iterable[str]) -> int:
    needles = [v.lower() for v in values if len(v) >= 3]
    if not needles:
        return 0
    store = p.stores.quarantine
    hits: list[str] = []
    offset = 0
    while True:
        page = store.list(None, 1000, offset)
        if not page:
            break
        offset += len(page)
        for item in page:
            if item.get("status") == "erased":  # blanked already (by an earlier pass)
                continue
            text = (
                orjson.dumps([item.get("payload"), item.get("reason"), item.get("problems")])
                .decode()
                .lower()
            )
            if any(n in text for n in needles):
                hits.append(str(item["id"]))
    for item_id in hits:
        store.update(item_id, status="erased", payload={}, problems=[], reason="erased on request")
    return len(hits)


def _erase_satellites(data: Path, ids: list[str], units: list[str]) -> int:
    removed = 0
    for name, table, column, which in _SATELLITES:
        path = data / name
        values = ids if which == "profiles" else units
        if not values or not path.exists():
            continue
        con = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
        try:
            con.execute("PRAGMA secure_delete=ON")
            marks = ", ".join("?" for _ in values)
            try:
                if table == "rewards":  # rewards of the person's decisions, too
                    removed += con.execute(
                        f"DELETE FROM rewards WHERE decision_id IN (SELECT decision_id FROM "
                        f"decisions WHERE profile_id IN ({marks}))",
                        values,
                    ).rowcount
                removed += con.execute(
                    f"DELETE FROM {table} WHERE {column} IN ({marks})", values
                ).rowcount
            except sqlite3.OperationalError:  # that feature has not created its table
                continue
        finally:
            con.close()
    return removed


def run_job(
    p: Personify,
    kind: str,
    subject: tuple[str, str],
    actor: str,
    **options: Any,
) -> dict[str, Any]:
    """Run an export or erase as a tracked job with an audit record; returns the job."""
    assert p.privacy is not None
    privacy = p.privacy
    pseudo = privacy.pseudonym(*subject)
    job_id = privacy.jobs.start(kind, pseudo)
    try:
        if kind == "export":
            result = export(p, *subject)
            summary = {
                "found": result["found"],
                "events": len(result.get("events", [])),
                "profiles": 1 if result["found"] else 0,
            }
            privacy.jobs.finish(job_id, summary, result=result)
        else:
            summary = erase(p, *subject, job_id=job_id, **options)
            privacy.jobs.finish(job_id, summary)
    except Exception as exc:  # recorded as failed, then raised to the caller
        privacy.jobs.finish(
            job_id, {}, error=exc.message if isinstance(exc, PersonifyError) else repr(exc)
        )
        privacy.audit.record(actor, f"privacy.{kind}.failed", pseudo, {"job_id": job_id})
        raise
    privacy.audit.record(actor, f"privacy.{kind}", pseudo, {"job_id": job_id, **summary})
    return privacy.jobs.get(job_id)
