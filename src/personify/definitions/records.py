"""What a stored definition is, and the port every definition store implements.

A *definition* is anything a marketer or developer writes down rather than something customers
generate: a segment, a content item, a placement, a rule set, an experiment. Each change is a new
immutable **version**; deleting writes a *tombstone* version, and rolling back writes a new
version equal to an old one, so history only ever grows and every state can be diffed.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

import orjson

from personify.errors import InvalidInput, Problem

KIND_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")


@dataclass(frozen=True)
class Definition:
    """One version of one definition.

    ``body`` is a fresh copy owned by the caller: changing it never changes the store.
    A tombstone (``deleted=True``) has an empty body.
    """

    kind: str
    key: str
    version: int
    body: dict[str, Any]
    actor: str
    message: str
    created_at: datetime
    deleted: bool = False
    #: store-wide sequence number of this version; increases with every write to the store.
    revision: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (API responses, ``--json`` CLI output)."""
        return {
            "kind": self.kind,
            "key": self.key,
            "version": self.version,
            "body": self.body,
            "actor": self.actor,
            "message": self.message,
            "created_at": self.created_at.isoformat(),
            "deleted": self.deleted,
            "revision": self.revision,
        }


class DefinitionStore(Protocol):
    """Versioned definitions (memory adapter for tests, SQLite file in embedded mode).

    Readers in other processes poll :meth:`revision` (one indexed ``MAX``) and call
    :meth:`changed_since` only when it moved, so caches reload within a poll interval.
    """

    def put(
        self, kind: str, key: str, body: dict[str, Any], actor: str, message: str = ""
    ) -> Definition:
        """Store ``body`` as the next version; an unchanged body returns the current one."""
        ...

    def get(self, kind: str, key: str, version: int | None = None) -> Definition:
        """The latest live version, or exactly ``version`` (tombstones included); NotFound."""
        ...

    def list(self, kind: str, include_deleted: bool = False) -> builtins.list[Definition]:
        """The latest version of every key of ``kind``, sorted by key."""
        ...

    def history(self, kind: str, key: str) -> builtins.list[Definition]:
        """Every version of one key, oldest first; NotFound if the key never existed."""
        ...

    def delete(self, kind: str, key: str, actor: str, message: str = "") -> Definition:
        """Write a tombstone version; NotFound if there is no live version."""
        ...

    def rollback(self, kind: str, key: str, to_version: int, actor: str) -> Definition:
        """Write a new version whose body equals ``to_version``'s."""
        ...

    def diff(self, kind: str, key: str, a: int, b: int) -> builtins.list[str]:
        """Readable JSON-path differences from version ``a`` to version ``b``."""
        ...

    def revision(self) -> int:
        """Store-wide counter that increases with every written version."""
        ...

    def changed_since(self, token: int) -> tuple[builtins.list[Definition], int]:
        """Versions written after ``token`` (oldest first) and the token to pass next time."""
        ...

    def close(self) -> None:
        """Release connections (a no-op in memory)."""
        ...


def check_ref(kind: str, key: str) -> None:
    """Refuse kinds and keys that would be ambiguous in paths, URLs and YAML."""
    problems = []
    if not isinstance(kind, str) or not KIND_PATTERN.fullmatch(kind):
        problems.append(
            Problem("kind", f"{kind!r} is not a kind: use lower-case letters, digits and _")
        )
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        problems.append(
            Problem(
                "key",
                f"{key!r} is not a key: start with a letter or digit, then letters, digits, "
                "'_', '.', ':' or '-' (at most 128)",
            )
        )
    if problems:
        raise InvalidInput(
            "invalid definition reference",
            hint="name definitions like 'home_hero' or 'winter-sale.v2'",
            problems=problems,
        )


def canonical(body: object) -> bytes:
    """Canonical JSON (sorted keys) so equal bodies compare equal byte for byte."""
    if not isinstance(body, dict):
        raise InvalidInput(
            "a definition body must be a JSON object",
            hint='send a mapping such as {"name": ...}',
            problems=[Problem("body", f"got {type(body).__name__}")],
        )
    try:
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise InvalidInput(
            "a definition body must be plain JSON",
            hint="use only objects, arrays, strings, numbers, booleans and null",
            problems=[Problem("body", str(exc))],
        ) from exc
