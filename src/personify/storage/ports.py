"""The storage ports: small protocols every backend implements.

Each port has an in-memory adapter (``storage/memory``) that defines the expected behaviour,
an embedded adapter (``storage/sqlite``, ``storage/duckdb``), and one shared contract test
suite (``tests/contract``) that every adapter passes.

Exactly-once processing: a consumer writes its results and the log offset they came from in
one transaction (``checkpoint=``), so after a crash it resumes after the last offset whose
results are durable, and nothing is applied twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class LogRecord:
    """One message on the durable event log."""

    offset: int
    message_id: str
    payload: bytes


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

    def close(self) -> None: ...


@dataclass
class ProfileChanges:
    """Everything one processed batch changes in the profile store, applied atomically."""

    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    identities: dict[tuple[str, str], str] = field(default_factory=dict)
    merges: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)

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
        """Write profiles, identities, merges and conflicts (and the offset) in one transaction."""
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

    def close(self) -> None: ...


class QuarantineStore(Protocol):
    """Messages that failed validation inside a batch or import, kept with the reason."""

    def add(self, items: Sequence[dict[str, Any]]) -> list[str]:
        """Store items (``payload``, ``reason``, ``problems``, ``source``, ``received_at``)."""
        ...

    def list(
        self, status: str | None = "quarantined", limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]: ...

    def get(self, item_id: str) -> dict[str, Any] | None: ...

    def update(self, item_id: str, **fields: Any) -> None:
        """Change ``status``, ``reason``, ``problems``, ``payload`` or ``replayed_at``."""
        ...

    def count(self, status: str | None = "quarantined") -> int: ...

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
