"""The rules every definition store shares, written once over a few storage primitives.

An adapter only stores and reads rows (:class:`VersionedStore` subclasses implement the
``_``-prefixed primitives); what a put, delete or rollback *means* lives here, so the memory
and SQLite adapters cannot drift apart.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from typing import Any

from personify.clock import Clock, SystemClock
from personify.definitions.diff import json_diff
from personify.definitions.records import Definition, canonical, check_ref
from personify.errors import Conflict, InvalidInput, NotFound, Problem

_ATTEMPTS = 20


class VersionConflict(Exception):
    """Another writer took the version number we were about to write; read and try again."""


class VersionedStore(ABC):
    """Shared behaviour of :class:`~personify.definitions.records.DefinitionStore` adapters."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()

    # -- primitives an adapter implements -------------------------------------------------
    @abstractmethod
    def _latest(self, kind: str, key: str) -> Definition | None: ...

    @abstractmethod
    def _version(self, kind: str, key: str, version: int) -> Definition | None: ...

    @abstractmethod
    def _latest_all(self, kind: str) -> builtins.list[Definition]: ...

    @abstractmethod
    def _history(self, kind: str, key: str) -> builtins.list[Definition]: ...

    @abstractmethod
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
        """Insert ``version``; raise :class:`VersionConflict` if it already exists."""

    @abstractmethod
    def revision(self) -> int: ...

    @abstractmethod
    def changed_since(self, token: int) -> tuple[builtins.list[Definition], int]: ...

    # -- behaviour ------------------------------------------------------------------------
    def put(
        self, kind: str, key: str, body: dict[str, Any], actor: str, message: str = ""
    ) -> Definition:
        check_ref(kind, key)
        _check_actor(actor)
        data = canonical(body)
        for _ in range(_ATTEMPTS):
            latest = self._latest(kind, key)
            if latest is not None and not latest.deleted and canonical(latest.body) == data:
                return latest
            try:
                return self._append(
                    kind, key, _next(latest), data, actor, message or "", deleted=False
                )
            except VersionConflict:
                continue
        raise _busy(kind, key)

    def get(self, kind: str, key: str, version: int | None = None) -> Definition:
        check_ref(kind, key)
        if version is not None:
            found = self._version(kind, key, version)
            if found is None:
                raise NotFound(
                    f"{kind} {key!r} has no version {version}",
                    hint=f"list its versions with the history of {kind} {key!r}",
                )
            return found
        latest = self._latest(kind, key)
        if latest is None:
            raise NotFound(
                f"no {kind} named {key!r}",
                hint=f"list the existing {kind} definitions, or create it with put/apply",
            )
        if latest.deleted:
            raise NotFound(
                f"{kind} {key!r} was deleted in version {latest.version}",
                hint=f"roll it back to version {latest.version - 1} to restore it",
            )
        return latest

    def list(self, kind: str, include_deleted: bool = False) -> builtins.list[Definition]:
        check_ref(kind, "x")
        rows = self._latest_all(kind)
        return [d for d in rows if include_deleted or not d.deleted]

    def history(self, kind: str, key: str) -> builtins.list[Definition]:
        check_ref(kind, key)
        rows = self._history(kind, key)
        if not rows:
            raise NotFound(
                f"no {kind} named {key!r} was ever stored",
                hint=f"list the existing {kind} definitions",
            )
        return rows

    def delete(self, kind: str, key: str, actor: str, message: str = "") -> Definition:
        _check_actor(actor)
        for _ in range(_ATTEMPTS):
            latest = self.get(kind, key)
            try:
                return self._append(
                    kind, key, latest.version + 1, b"{}", actor, message or "deleted", True
                )
            except VersionConflict:
                continue
        raise _busy(kind, key)

    def rollback(self, kind: str, key: str, to_version: int, actor: str) -> Definition:
        old = self.get(kind, key, to_version)
        if old.deleted:
            raise InvalidInput(
                f"version {to_version} of {kind} {key!r} is a deletion",
                hint="roll back to a version before the deletion",
                problems=[Problem("to_version", "is a tombstone")],
            )
        return self.put(kind, key, old.body, actor, f"rollback to version {to_version}")

    def diff(self, kind: str, key: str, a: int, b: int) -> builtins.list[str]:
        return json_diff(self.get(kind, key, a).body, self.get(kind, key, b).body)


def _next(latest: Definition | None) -> int:
    return 1 if latest is None else latest.version + 1


def _check_actor(actor: str) -> None:
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidInput(
            "every change needs an actor",
            hint="pass who made the change, e.g. actor='alice' or the API key's name",
            problems=[Problem("actor", "is empty")],
        )


def _busy(kind: str, key: str) -> Conflict:
    return Conflict(
        f"{kind} {key!r} kept changing while it was being written",
        hint="retry the change",
    )
