"""Seal PII inside stored messages: the event log, the event store and the quarantine.

With ``privacy.encrypt_pii`` these wrappers seal (AES-256-GCM, :mod:`personify.privacy.pii`)
the values of PII and sensitive fields at the places the Segment spec puts personal data:
``traits``, ``context.traits``, ``properties`` and ``context`` itself (``ip``). Readers get
the message back opened, so the processor, the timeline and segment rebuilds see plain
values; SQL that reads ``events.duckdb`` directly sees only ordinary fields in the clear.

Not covered: PII nested deeper (``properties.customer.email``) or used as ``userId``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson

from personify.privacy.pii import FieldCipher, is_sealed
from personify.storage.ports import EventLog, EventStore, LogRecord, QuarantineStore


class MessageSealer:
    """Seals and opens the PII fields of one Segment message (a dict, changed in place)."""

    def __init__(self, cipher: FieldCipher, protected: Iterable[str]) -> None:
        self.cipher = cipher
        self.protected = frozenset(protected)

    def _places(self, msg: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], frozenset[str]]]:
        """Where personal data sits, with the names sealed there. In ``properties`` and
        ``context``, ``name`` is a product or page name, not a person's: it stays."""
        context = msg.get("context")
        loose = self.protected - {"name"}
        for place, names in (
            (msg.get("traits"), self.protected),
            (context.get("traits") if isinstance(context, dict) else None, self.protected),
            (msg.get("properties"), loose),
            (context, loose),
        ):
            if isinstance(place, dict):
                yield place, names

    def seal(self, msg: Any) -> Any:
        if isinstance(msg, dict):
            for place, names in self._places(msg):
                for name in names & set(place):
                    if not is_sealed(place[name]):
                        place[name] = self.cipher.seal(orjson.dumps(place[name]), f"trait:{name}")
        return msg

    def open(self, msg: Any) -> Any:
        if isinstance(msg, dict):
            for place, _ in self._places(msg):
                for name, value in place.items():
                    if is_sealed(value):
                        place[name] = orjson.loads(self.cipher.open(value, f"trait:{name}"))
        return msg

    def seal_bytes(self, payload: bytes | str) -> bytes:
        return orjson.dumps(self.seal(orjson.loads(payload)))

    def open_bytes(self, payload: bytes | str) -> bytes:
        return orjson.dumps(self.open(orjson.loads(payload)))


class SealingEventLog:
    """The durable log with PII sealed in each payload."""

    def __init__(self, inner: EventLog, sealer: MessageSealer) -> None:
        self.inner = inner
        self.sealer = sealer

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> int:
        return self.inner.publish([(mid, self.sealer.seal_bytes(p)) for mid, p in messages])

    def read(self, after: int, limit: int) -> list[LogRecord]:
        return [
            LogRecord(r.offset, r.message_id, self.sealer.open_bytes(r.payload))
            for r in self.inner.read(after, limit)
        ]

    def head(self) -> int:
        return self.inner.head()

    def wait(self, after: int, timeout: float) -> bool:
        return self.inner.wait(after, timeout)

    def count(self) -> int:
        return self.inner.count()

    def redact(self, message_ids: Sequence[str]) -> int:
        return self.inner.redact(message_ids)

    def close(self) -> None:
        self.inner.close()


class SealingEventStore:
    """The event store with PII sealed in the ``payload`` column."""

    def __init__(self, inner: EventStore, sealer: MessageSealer) -> None:
        self.inner = inner
        self.sealer = sealer

    def _opened(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            if row.get("payload") is not None:
                row["payload"] = self.sealer.open_bytes(row["payload"]).decode()
        return rows

    def append(self, events: Sequence[dict[str, Any]], checkpoint: int | None = None) -> None:
        sealed = [{**e, "payload": self.sealer.seal_bytes(e["payload"]).decode()} for e in events]
        self.inner.append(sealed, checkpoint)

    def checkpoint(self) -> int:
        return self.inner.checkpoint()

    def timeline(
        self, profile_ids: Sequence[str], limit: int = 100, before: str | None = None
    ) -> list[dict[str, Any]]:
        return self._opened(self.inner.timeline(profile_ids, limit, before))

    def count(self) -> int:
        return self.inner.count()

    def count_distinct_messages(self) -> int:
        return self.inner.count_distinct_messages()

    def scan(
        self,
        events: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[list[dict[str, Any]]]:
        for batch in self.inner.scan(events, types, batch_size):
            yield self._opened(batch)

    def delete_profiles(self, profile_ids: Sequence[str]) -> list[str]:
        return self.inner.delete_profiles(profile_ids)

    def delete_before(
        self, before: str, events: Sequence[str] | None = None, keep: Sequence[str] = ()
    ) -> list[str]:
        return self.inner.delete_before(before, events, keep)

    def close(self) -> None:
        self.inner.close()


class SealingQuarantine:
    """The quarantine with PII sealed in each item's payload."""

    def __init__(self, inner: QuarantineStore, sealer: MessageSealer) -> None:
        self.inner = inner
        self.sealer = sealer

    def _opened(self, item: dict[str, Any]) -> dict[str, Any]:
        item["payload"] = self.sealer.open(item.get("payload"))
        return item

    def add(self, items: Sequence[dict[str, Any]]) -> list[str]:
        sealed = [
            {**i, "payload": self.sealer.seal(orjson.loads(orjson.dumps(i["payload"])))}
            for i in items
        ]
        return self.inner.add(sealed)

    def list(
        self, status: str | None = "quarantined", limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        return [self._opened(i) for i in self.inner.list(status, limit, offset)]

    def get(self, item_id: str) -> dict[str, Any] | None:
        item = self.inner.get(item_id)
        return self._opened(item) if item is not None else None

    def update(self, item_id: str, **fields: Any) -> None:
        if "payload" in fields:
            fields["payload"] = self.sealer.seal(orjson.loads(orjson.dumps(fields["payload"])))
        self.inner.update(item_id, **fields)

    def count(self, status: str | None = "quarantined") -> int:
        return self.inner.count(status)

    def close(self) -> None:
        self.inner.close()
