"""The storage ports: small protocols every backend implements.

Each port has an in-memory adapter (``storage/memory``) that defines the expected behaviour,
an embedded adapter (``storage/sqlite``, ``storage/duckdb``), and one shared contract test
suite (``tests/contract``) that every adapter passes.

Exactly-once processing: a consumer writes its results and the log offset they came from in
one transaction (``checkpoint=``), so after a crash it resumes after the last offset whose
results are durable, and nothing is applied twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson


@dataclass(frozen=True)
class LogRecord:
    """One message on the durable event log."""

    offset: int
    message_id: str
    payload: bytes


ERASED_ANONYMOUS_ID = "personify:erased"


def erasure_tombstone(message_id: str) -> bytes:
    """The payload that replaces an erased message in the log: valid, and personal-data free.

    Should the log ever be replayed, every tombstone lands on one sink profile.
    """
    epoch = "1970-01-01T00:00:00.000000Z"
    return orjson.dumps(
        {
            "type": "track",
            "event": "Erased",
            "anonymousId": ERASED_ANONYMOUS_ID,
            "messageId": message_id,
            "properties": {},
            "timestamp": epoch,
            "receivedAt": epoch,
            "_meta": {"source": "privacy"},
        }
    )


class EventLog(Protocol):
    """Durable, de-duplicating, ordered log between the collector and the processors."""

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> int:
        """Append ``(message_id, payload)`` pairs; a message id seen before is skipped.

        Returns how many were new. When it returns, the new records are durable.
        """
        ...

    def read(self, after: int, limit: int) -> list[LogRecord]:
        """Records with offset greater than ``after``, in offset order."""
        ...

    def head(self) -> int:
        """The highest offset written (0 when empty)."""
        ...

    def wait(self, after: int, timeout: float) -> bool:
        """Block until a record beyond ``after`` exists or ``timeout`` passes."""
        ...

    def count(self) -> int:
        """Number of records in the log."""
        ...

    def redact(self, message_ids: Sequence[str]) -> int:
        """Replace the payloads of these messages with an erasure tombstone (privacy erasure).

        Offsets and message ids stay, so positions and de-duplication are unchanged; the
        tombstone is a valid message with no personal data. Returns how many were redacted.
        """
        ...

    def replace(self, payloads: Sequence[tuple[str, bytes]]) -> int:
        """Overwrite the stored payloads of these ``(message_id, payload)`` pairs, leaving no
        trace of the old bytes (data minimization); an erased message (its tombstone) is
        left as it is. Returns how many were overwritten."""
        ...

    def swap_payloads(self, changes: Sequence[tuple[int, bytes, bytes]]) -> int:
        """Compare-and-swap stored payloads (key rotation): each ``(offset, expected, new)``
        replaces the payload only while it still equals ``expected``, so a concurrent
        redaction wins. Payloads are as stored (a sealing wrapper passes them through).
        Returns how many were replaced.
        """
        ...

    def close(self) -> None: ...


@dataclass
class ProfileChanges:
    """Everything one processed batch changes in the profile store, applied atomically."""

    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    identities: dict[tuple[str, str], str] = field(default_factory=dict)
    merges: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    # Optional orjson bytes of some ``profiles`` documents (same content), so a store that
    # writes JSON need not serialize them again; a store may ignore it.
    encoded: dict[str, bytes] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.profiles or self.identities or self.merges or self.conflicts)


class ProfileStore(Protocol):
    """Unified profiles and the identity graph that points at them."""

    def get_many(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Profile documents by id (merged-away profiles included, with ``merged_into``)."""
        ...

    def lookup_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Profile ids for identity keys ``(kind, value)``; unknown keys are absent."""
        ...

    def apply(self, changes: ProfileChanges, checkpoint: int | None = None) -> None:
        """Write profiles, identities, merges and conflicts (and the offset) in one transaction.

        A store may write in the background (one batch in flight): its reads still see the
        write, and :meth:`settle` reports whether it landed.
        """
        ...

    def settle(self) -> None:
        """Wait until no write is in flight; raise the error of the last write that failed
        (since the previous call). Synchronous stores return at once."""
        ...

    def checkpoint(self) -> int:
        """The last log offset whose effects are stored (0 if none)."""
        ...

    def history(self, profile_id: str) -> dict[str, list[dict[str, Any]]]:
        """Append-only ``merges`` and ``conflicts`` that involve a profile."""
        ...

    def count(self) -> int:
        """Number of live (not merged-away) profiles."""
        ...

    def scan(self, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Every live profile document, in batches (for rebuilds and dry runs)."""
        ...

    def delete_profiles(self, profile_ids: Iterable[str]) -> int:
        """Remove these profiles with their identity keys, merges and conflicts (erasure).

        Returns how many profile documents were removed.
        """
        ...

    def merged_into(self, profile_ids: Iterable[str]) -> list[str]:
        """Ids of the stored profiles whose ``merged_into`` is one of these, in no set order
        (erasure: a profile merged into the person's is theirs, and once that one is gone no
        identity key leads to it)."""
        ...

    def close(self) -> None: ...


class EventStore(Protocol):
    """Processed events, for the timeline now and for analytics later."""

    def append(self, events: Sequence[dict[str, Any]], checkpoint: int | None = None) -> None:
        """Append enriched events (see ``personify.profiles.records.EVENT_COLUMNS``)."""
        ...

    def checkpoint(self) -> int: ...

    def timeline(
        self, profile_ids: Sequence[str], limit: int = 100, before: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest-first events of these profiles (older than ``before`` if given)."""
        ...

    def count(self) -> int: ...

    def count_distinct_messages(self) -> int: ...

    def scan(
        self,
        events: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows (``profile_id``, ``type``, ``event``, ``timestamp``, ``payload``) in time order.

        With ``events`` and/or ``types``, only track events with those names or messages of
        those types (either matches).
        """
        ...

    def delete_profiles(self, profile_ids: Sequence[str]) -> list[str]:
        """Remove every event of these profiles (erasure); returns their message ids."""
        ...

    def delete_before(
        self, before: str, events: Sequence[str] | None = None, keep: Sequence[str] = ()
    ) -> list[str]:
        """Remove events older than ``before`` (retention); returns their message ids.

        With ``events``, only track events of those names; names in ``keep`` are never
        removed (messages without an event name always can be).
        """
        ...

    def scan_payloads(self, batch_size: int = 10_000) -> Iterator[list[tuple[str, str]]]:
        """Every row's ``(message_id, payload)`` as stored (a sealing wrapper passes them
        through), in batches, in no set order; rows written meanwhile may be left out."""
        ...

    def swap_payloads(self, changes: Sequence[tuple[str, str, str]]) -> int:
        """Compare-and-swap payloads (key rotation): each ``(message_id, expected, new)``
        replaces the payload of that message's rows only while it still equals ``expected``.
        Returns how many rows were replaced.
        """
        ...

    def close(self) -> None: ...


def quarantine_id(item: Mapping[str, Any]) -> str:
    """The id of a quarantined item: a digest of its source and payload as stored.

    The same message set aside twice (a client's retry, the same file imported again) is
    one item: adapters keep the first and answer its id. A payload sealed under PII
    encryption has a random nonce, so sealed items are not merged (and the id reveals
    nothing about the plain text).
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(item.get("source")).encode())
    digest.update(b"\x00")
    digest.update(orjson.dumps(item["payload"], option=orjson.OPT_SORT_KEYS))
    return "q_" + digest.hexdigest()


class QuarantineStore(Protocol):
    """Messages that failed validation inside a batch or import, kept with the reason."""

    def add(self, items: Sequence[dict[str, Any]]) -> list[str]:
        """Store items (``payload``, ``reason``, ``problems``, ``source``, ``received_at``);
        their ids, :func:`quarantine_id` (an item already held is kept as it is)."""
        ...

    def list(
        self, status: str | None = "quarantined", limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]: ...

    def get(self, item_id: str) -> dict[str, Any] | None: ...

    def update(self, item_id: str, **fields: Any) -> None:
        """Change ``status``, ``reason``, ``problems``, ``payload`` or ``replayed_at``."""
        ...

    def count(self, status: str | None = "quarantined") -> int: ...

    def scan_payloads(self, batch_size: int = 1000) -> Iterator[Sequence[tuple[str, Any]]]:
        """Every item's ``(id, payload)`` as stored (a sealing wrapper passes them through),
        in batches; items added meanwhile may be left out."""
        ...

    def swap_payloads(self, changes: Sequence[tuple[str, Any, Any]]) -> int:
        """Compare-and-swap payloads (key rotation): each ``(id, expected, new)`` replaces the
        payload only while it still equals ``expected`` (compared as JSON values), so a
        concurrent erasure or replay wins. Returns how many were replaced.
        """
        ...

    def close(self) -> None: ...


class Cache(Protocol):
    """Online cache for hot reads (profiles now; features and model outputs later)."""

    def get(self, key: str) -> Any | None: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...

    def clear(self) -> None: ...


class ScoreStore(Protocol):
    """Model scores per profile (``scores.<model>`` in conditions), the latest per model."""

    def put(self, model: str, version: int, scores: Mapping[str, float], at: str) -> None:
        """Upsert ``{profile_id: value}`` for ``model``, replacing each profile's older score."""
        ...

    def get_many(self, profile_ids: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """``{profile_id: {model: {"value", "version", "at"}}}``; unscored profiles are absent."""
        ...

    def delete_profiles(self, profile_ids: Iterable[str]) -> int:
        """Remove every score of these profiles (erasure); returns how many were removed."""
        ...

    def count(self, model: str | None = None) -> int:
        """Stored scores, of one model or of all."""
        ...

    def close(self) -> None: ...
