"""Definitions in memory: the reference behaviour, for tests and the ``memory`` backend."""

from __future__ import annotations

import builtins
import threading
from dataclasses import dataclass
from datetime import datetime

import orjson

from personify.clock import Clock
from personify.definitions.base import VersionConflict, VersionedStore
from personify.definitions.records import Definition


@dataclass(frozen=True)
class _Row:
    revision: int
    kind: str
    key: str
    version: int
    body: bytes
    actor: str
    message: str
    created_at: datetime
    deleted: bool

    def definition(self) -> Definition:
        return Definition(
            kind=self.kind,
            key=self.key,
            version=self.version,
            body=orjson.loads(self.body),
            actor=self.actor,
            message=self.message,
            created_at=self.created_at,
            deleted=self.deleted,
            revision=self.revision,
        )


class MemoryDefinitionStore(VersionedStore):
    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self._rows: builtins.list[_Row] = []
        self._by_key: dict[tuple[str, str], builtins.list[_Row]] = {}
        self._lock = threading.Lock()

    def _latest(self, kind: str, key: str) -> Definition | None:
        with self._lock:
            rows = self._by_key.get((kind, key))
            return rows[-1].definition() if rows else None

    def _version(self, kind: str, key: str, version: int) -> Definition | None:
        with self._lock:
            rows = self._by_key.get((kind, key), [])
            if 1 <= version <= len(rows):
                return rows[version - 1].definition()
            return None

    def _latest_all(self, kind: str) -> builtins.list[Definition]:
        with self._lock:
            found = [rows[-1] for (k, _), rows in self._by_key.items() if k == kind]
        return [r.definition() for r in sorted(found, key=lambda r: r.key)]

    def _history(self, kind: str, key: str) -> builtins.list[Definition]:
        with self._lock:
            rows = list(self._by_key.get((kind, key), []))
        return [r.definition() for r in rows]

    def _append(
        self,
        kind: str,
        key: str,
        version: int,
        body: bytes,
        actor: str,
        message: str,
        deleted: bool,
    ) -> Definition:
        with self._lock:
            rows = self._by_key.setdefault((kind, key), [])
            if len(rows) + 1 != version:
                raise VersionConflict
            row = _Row(
                len(self._rows) + 1,
                kind,
                key,
                version,
                body,
                actor,
                message,
                self._clock.now(),
                deleted,
            )
            rows.append(row)
            self._rows.append(row)
        return row.definition()

    def revision(self) -> int:
        return len(self._rows)

    def changed_since(self, token: int) -> tuple[builtins.list[Definition], int]:
        with self._lock:
            rows = self._rows[max(token, 0) :]
            head = len(self._rows)
        return [r.definition() for r in rows], head

    def close(self) -> None:
        """Nothing to release: the versions live as long as the object."""
