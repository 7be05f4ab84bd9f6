"""Seal PII inside stored messages: the event log, the event store and the quarantine.

With ``privacy.encrypt_pii`` these wrappers seal (AES-256-GCM, :mod:`personify.privacy.pii`)
the values of PII and sensitive fields at the places the Segment spec puts personal data:
``traits``, ``context.traits``, ``properties`` and ``context`` itself (``ip``). Readers get
the message back opened, so the processor, the timeline and segment rebuilds see plain
values; SQL that reads ``events.duckdb`` directly sees only ordinary fields in the clear.

After a key rotation, ``reseal_batches`` on each wrapper seals again, batch by batch, every
value still sealed with an old key (compare-and-swap on the stored payload, so a concurrent
erasure wins); a value already under the current key is left alone, so a pass can be
repeated or resumed. :mod:`personify.privacy.rotation` runs the passes.

Not covered: PII nested deeper (``properties.customer.email``) or used as ``userId``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson

from personify.privacy.pii import PREFIX, FieldCipher, Resealed, is_sealed
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

    def reseal(self, msg: Any) -> bool:
        """Seal again with the current key, in place, every value sealed with an older one;
        whether anything changed."""
        changed = False
        if isinstance(msg, dict):
            for place, _ in self._places(msg):
                for name, value in place.items():
                    if is_sealed(value) and not self.cipher.is_current(value):
                        place[name] = self.cipher.reseal(value, f"trait:{name}")
                        changed = True
        return changed

    def _maybe_stale(self, payload: bytes) -> bool:
        """A cheap test on the serialized message: does any sealed value name another key?"""
        current = f"{PREFIX}{self.cipher.ring.current}:".encode()
        return payload.count(PREFIX.encode()) != payload.count(current)

    def reseal_bytes(self, payload: bytes) -> bytes | None:
        """The payload with old-key values sealed again, or None when none needs it."""
        if not self._maybe_stale(payload):
            return None
        msg = orjson.loads(payload)
        return orjson.dumps(msg) if self.reseal(msg) else None


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

    def replace(self, payloads: Sequence[tuple[str, bytes]]) -> int:
        return self.inner.replace([(mid, self.sealer.seal_bytes(p)) for mid, p in payloads])

    def swap_payloads(self, changes: Sequence[tuple[int, bytes, bytes]]) -> int:
        return self.inner.swap_payloads(changes)

    def reseal_batches(self, batch_size: int = 1000) -> Iterator[Resealed]:
        """Seal every record again with the current key, in offset order, one batch per
        step; records already under it are not rewritten."""
        after = 0
        while records := self.inner.read(after, batch_size):
            after = records[-1].offset
            swaps = [
                (r.offset, r.payload, new)
                for r in records
                if (new := self.sealer.reseal_bytes(r.payload)) is not None
            ]
            yield Resealed(len(records), self.inner.swap_payloads(swaps))

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

    def scan_payloads(self, batch_size: int = 10_000) -> Iterator[list[tuple[str, str]]]:
        return self.inner.scan_payloads(batch_size)

    def swap_payloads(self, changes: Sequence[tuple[str, str, str]]) -> int:
        return self.inner.swap_payloads(changes)

    def reseal_batches(self, batch_size: int = 10_000) -> Iterator[Resealed]:
        """Seal every row's payload again with the current key, one batch per step; at the
        end a store that keeps replaced bytes in its file (DuckDB) is compacted."""
        swapped = 0
        for batch in self.inner.scan_payloads(batch_size):
            swaps = [
                (mid, payload, new.decode())
                for mid, payload in batch
                if (new := self.sealer.reseal_bytes(payload.encode())) is not None
            ]
            done = self.inner.swap_payloads(swaps)
            swapped += done
            yield Resealed(len(batch), done)
        compact = getattr(self.inner, "compact", None)
        if swapped and compact is not None:
            compact()

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

    def scan_payloads(self, batch_size: int = 1000) -> Iterator[Sequence[tuple[str, Any]]]:
        return self.inner.scan_payloads(batch_size)

    def swap_payloads(self, changes: Sequence[tuple[str, Any, Any]]) -> int:
        return self.inner.swap_payloads(changes)

    def reseal_batches(self, batch_size: int = 1000) -> Iterator[Resealed]:
        """Seal every item's payload again with the current key, one batch per step."""
        for batch in self.inner.scan_payloads(batch_size):
            swaps = []
            for item_id, payload in batch:
                new = self.sealer.reseal_bytes(orjson.dumps(payload))
                if new is not None:
                    swaps.append((item_id, payload, orjson.loads(new)))
            yield Resealed(len(batch), self.inner.swap_payloads(swaps))

    def close(self) -> None:
        self.inner.close()
