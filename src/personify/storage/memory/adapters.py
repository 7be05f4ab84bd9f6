"""In-memory implementations of every storage port."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from personify.storage.ports import (
    ERASED_ANONYMOUS_ID,
    LogRecord,
    ProfileChanges,
    erasure_tombstone,
    quarantine_id,
)


class MemoryEventLog:
    def __init__(self) -> None:
        self._records: list[LogRecord] = []
        self._seen: set[str] = set()
        self._cond = threading.Condition()

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> int:
        with self._cond:
            new = 0
            for message_id, payload in messages:
                if message_id in self._seen:
                    continue
                self._seen.add(message_id)
                self._records.append(LogRecord(len(self._records) + 1, message_id, payload))
                new += 1
            if new:
                self._cond.notify_all()
            return new

    def read(self, after: int, limit: int) -> list[LogRecord]:
        with self._cond:
            return self._records[max(after, 0) : max(after, 0) + limit]

    def head(self) -> int:
        with self._cond:
            return len(self._records)

    def wait(self, after: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._records) > after, timeout)

    def count(self) -> int:
        return self.head()

    def redact(self, message_ids: Sequence[str]) -> int:
        return self._overwrite([(mid, erasure_tombstone(mid)) for mid in message_ids], None)

    def replace(self, payloads: Sequence[tuple[str, bytes]]) -> int:
        # an erased message stays erased (an erasure may have come in meanwhile)
        return self._overwrite(payloads, f'"anonymousId":"{ERASED_ANONYMOUS_ID}"'.encode())

    def _overwrite(self, payloads: Sequence[tuple[str, bytes]], unless: bytes | None) -> int:
        wanted = dict(payloads)
        with self._cond:
            done = 0
            for i, rec in enumerate(self._records):
                if rec.message_id in wanted and not (unless and unless in rec.payload):
                    self._records[i] = LogRecord(rec.offset, rec.message_id, wanted[rec.message_id])
                    done += 1
            return done

    def swap_payloads(self, changes: Sequence[tuple[int, bytes, bytes]]) -> int:
        with self._cond:
            done = 0
            for offset, expected, new in changes:
                i = offset - 1
                if 0 <= i < len(self._records) and self._records[i].payload == expected:
                    rec = self._records[i]
                    self._records[i] = LogRecord(rec.offset, rec.message_id, new)
                    done += 1
            return done

    def close(self) -> None:
        pass


class MemoryProfileStore:
    def __init__(self) -> None:
        self._profiles: dict[str, dict[str, Any]] = {}
        self._identities: dict[tuple[str, str], str] = {}
        self._merges: list[dict[str, Any]] = []
        self._conflicts: list[dict[str, Any]] = []
        self._checkpoint = 0
        self._lock = threading.Lock()

    def get_many(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                pid: copy.deepcopy(self._profiles[pid])
                for pid in profile_ids
                if pid in self._profiles
            }

    def lookup_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        with self._lock:
            return {k: self._identities[k] for k in keys if k in self._identities}

    def apply(self, changes: ProfileChanges, checkpoint: int | None = None) -> None:
        with self._lock:
            for pid, doc in changes.profiles.items():
                self._profiles[pid] = copy.deepcopy(doc)
            self._identities.update(changes.identities)
            self._merges.extend(copy.deepcopy(changes.merges))
            self._conflicts.extend(copy.deepcopy(changes.conflicts))
            if checkpoint is not None:
                self._checkpoint = checkpoint

    def settle(self) -> None:
        """Writes are synchronous here: nothing is ever in flight."""

    def checkpoint(self) -> int:
        return self._checkpoint

    def history(self, profile_id: str) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {
                "merges": [
                    dict(m)
                    for m in self._merges
                    if profile_id in (m["survivor_id"], m["merged_id"])
                ],
                "conflicts": [
                    dict(c) for c in self._conflicts if profile_id in c.get("profile_ids", [])
                ],
            }

    def count(self) -> int:
        with self._lock:
            return sum(1 for p in self._profiles.values() if not p.get("merged_into"))

    def scan(self, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        with self._lock:
            live = [p for p in sorted(self._profiles) if not self._profiles[p].get("merged_into")]
        for i in range(0, len(live), batch_size):
            docs = self.get_many(live[i : i + batch_size])
            yield [docs[pid] for pid in live[i : i + batch_size] if pid in docs]

    def delete_profiles(self, profile_ids: Iterable[str]) -> int:
        gone = set(profile_ids)
        with self._lock:
            removed = sum(1 for pid in gone if self._profiles.pop(pid, None) is not None)
            self._identities = {k: v for k, v in self._identities.items() if v not in gone}
            self._merges = [
                m for m in self._merges if not {m["survivor_id"], m["merged_id"]} & gone
            ]
            self._conflicts = [
                c for c in self._conflicts if not set(c.get("profile_ids", [])) & gone
            ]
        return removed

    def merged_into(self, profile_ids: Iterable[str]) -> list[str]:
        into = set(profile_ids)
        with self._lock:
            return sorted(p for p, doc in self._profiles.items() if doc.get("merged_into") in into)

    def close(self) -> None:
        pass


class MemoryEventStore:
    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._checkpoint = 0
        self._lock = threading.Lock()

    def append(self, events: Sequence[dict[str, Any]], checkpoint: int | None = None) -> None:
        with self._lock:
            self._events.extend(dict(e) for e in events)
            if checkpoint is not None:
                self._checkpoint = checkpoint

    def checkpoint(self) -> int:
        return self._checkpoint

    def timeline(
        self, profile_ids: Sequence[str], limit: int = 100, before: str | None = None
    ) -> list[dict[str, Any]]:
        wanted = set(profile_ids)
        with self._lock:
            rows = [
                e
                for e in self._events
                if e["profile_id"] in wanted and (before is None or e["timestamp"] < before)
            ]
        rows.sort(key=lambda e: (e["timestamp"], e["message_id"]), reverse=True)
        return [dict(r) for r in rows[:limit]]

    def count(self) -> int:
        with self._lock:
            return len(self._events)

    def scan(
        self,
        events: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[list[dict[str, Any]]]:
        names, kinds = set(events or ()), set(types or ())
        with self._lock:
            rows = [
                {k: e[k] for k in ("profile_id", "type", "event", "timestamp", "payload")}
                for e in self._events
                if not (names or kinds) or e["event"] in names or e["type"] in kinds
            ]
        rows.sort(key=lambda r: (r["timestamp"], r["payload"]))
        for i in range(0, len(rows), batch_size):
            yield rows[i : i + batch_size]

    def count_distinct_messages(self) -> int:
        with self._lock:
            return len({e["message_id"] for e in self._events})

    def delete_profiles(self, profile_ids: Sequence[str]) -> list[str]:
        gone = set(profile_ids)
        with self._lock:
            ids = [e["message_id"] for e in self._events if e["profile_id"] in gone]
            self._events = [e for e in self._events if e["profile_id"] not in gone]
        return ids

    def delete_before(
        self, before: str, events: Sequence[str] | None = None, keep: Sequence[str] = ()
    ) -> list[str]:
        names, kept = set(events or ()), set(keep)

        def expired(e: dict[str, Any]) -> bool:
            if e["timestamp"] >= before or (e["event"] is not None and e["event"] in kept):
                return False
            return not names or e["event"] in names

        with self._lock:
            ids = [e["message_id"] for e in self._events if expired(e)]
            self._events = [e for e in self._events if not expired(e)]
        return ids

    def scan_payloads(self, batch_size: int = 10_000) -> Iterator[list[tuple[str, str]]]:
        with self._lock:
            rows = [
                (e["message_id"], e["payload"]) for e in self._events if e["payload"] is not None
            ]
        for i in range(0, len(rows), batch_size):
            yield rows[i : i + batch_size]

    def swap_payloads(self, changes: Sequence[tuple[str, str, str]]) -> int:
        wanted = {(mid, expected): new for mid, expected, new in changes}
        with self._lock:
            done = 0
            for e in self._events:
                new = wanted.get((e["message_id"], e["payload"]))
                if new is not None:
                    e["payload"] = new
                    done += 1
            return done

    def close(self) -> None:
        pass


class MemoryQuarantineStore:
    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def add(self, items: Sequence[dict[str, Any]]) -> list[str]:
        ids: list[str] = []
        with self._lock:
            for item in items:
                item_id = quarantine_id(item)
                if item_id not in self._items:  # the same message set aside again: one item
                    self._items[item_id] = {
                        "id": item_id,
                        "status": "quarantined",
                        "replayed_at": None,
                        **copy.deepcopy(item),
                    }
                ids.append(item_id)
        return ids

    def list(
        self, status: str | None = "quarantined", limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        with self._lock:
            rows = [
                copy.deepcopy(i)
                for i in self._items.values()
                if status is None or i["status"] == status
            ]
        rows.sort(key=lambda i: (i["received_at"], i["id"]))
        return rows[offset : offset + limit]

    def get(self, item_id: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._items.get(item_id)
            return copy.deepcopy(item) if item else None

    def update(self, item_id: str, **fields: Any) -> None:
        with self._lock:
            self._items[item_id].update(copy.deepcopy(fields))

    def count(self, status: str | None = "quarantined") -> int:
        with self._lock:
            return sum(1 for i in self._items.values() if status is None or i["status"] == status)

    def scan_payloads(self, batch_size: int = 1000) -> Iterator[Sequence[tuple[str, Any]]]:
        with self._lock:
            rows = [(i["id"], copy.deepcopy(i["payload"])) for i in self._items.values()]
        for i in range(0, len(rows), batch_size):
            yield rows[i : i + batch_size]

    def swap_payloads(self, changes: Sequence[tuple[str, Any, Any]]) -> int:
        with self._lock:
            done = 0
            for item_id, expected, new in changes:
                item = self._items.get(item_id)
                if item is not None and item["payload"] == expected:
                    item["payload"] = copy.deepcopy(new)
                    done += 1
            return done

    def close(self) -> None:
        pass


class LruCache:
    """A bounded, thread-safe least-recently-used cache."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def set(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
