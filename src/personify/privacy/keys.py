"""API keys with roles, stored hashed.

A key is ``pk_<id>_<secret>``; only ``SHA-256(key)`` is stored, so a copy of the data
directory does not hold usable keys. The role says what a key may do:

- ``admin``: everything, including keys, privacy jobs and the audit log;
- ``marketer``: definitions (segments, rules, content, experiments) and reading them;
- ``analyst``: reading profiles and aggregates (reports, sizes, stats);
- ``decide``: the decision and recommendation APIs only.

``PERSONIFY_ADMIN_KEY`` stays the bootstrap admin key (it is how the first key is created).

>>> store = ApiKeyStore(None)
>>> created = store.create("analyst", "notebook")
>>> store.verify(created.token).role
'analyst'
>>> store.revoke(created.key.key_id).revoked_at is not None
True
>>> store.verify(created.token) is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from personify.errors import InvalidInput, NotFound, Problem
from personify.privacy.db import Db
from personify.storage.sqlite.watch import FileWatch

ROLES = ("admin", "marketer", "analyst", "decide")
_MAX_VERIFIED = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the secret itself)."""

    key_id: str
    role: str
    name: str
    created_at: str
    revoked_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CreatedKey:
    """A new key: the token is shown once and never stored."""

    key: ApiKey
    token: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(
            f"unknown role {role!r}",
            hint=f"use one of {', '.join(ROLES)}",
            problems=[Problem("role", f"must be one of {', '.join(ROLES)}")],
        )
    return role


class ApiKeyStore:
    """Keys in ``keys.sqlite`` (or in memory); lookups by digest, compared in constant time.

    Every admin, analyst and ``decide`` request verifies its key, so verified keys are kept
    in memory by digest (never the token) until anything is written to the keys: here
    (create, revoke) or in another process (``personify keys revoke`` while the server runs),
    which ``PRAGMA data_version`` reveals. A revoked key therefore stops working at once.
    """

    def __init__(self, path: Path | None) -> None:
        self._db = Db(path, _SCHEMA)
        self._watch = FileWatch([path]) if path is not None else None
        self._verified: dict[str, ApiKey] = {}
        self._verified_at: tuple[int, ...] | None = None
        self._writes = 0  # this store's own changes (the only ones, in memory)
        self._cache_lock = threading.Lock()

    def _version(self) -> tuple[int, ...]:
        own = self._writes
        return (own, *self._watch.token()) if self._watch is not None else (own,)

    def _changed(self) -> None:
        with self._cache_lock:
            self._writes += 1
            self._verified.clear()

    def create(self, role: str, name: str) -> CreatedKey:
        check_role(role)
        name = name.strip()
        if not name or len(name) > 200 or not name.isprintable():
            raise InvalidInput(
                "a key needs a name of 1 to 200 printable characters",
                hint="name it after who uses it, e.g. 'reporting notebook'",
                problems=[Problem("name", "1 to 200 characters, no control characters")],
            )
        key_id = secrets.token_hex(6)
        token = f"pk_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id, role, name, datetime.now(UTC).isoformat())
        with self._db.tx() as con:
            con.execute(
                "INSERT INTO api_keys (key_id, digest, role, name, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key_id, digest(token), role, name, key.created_at),
            )
        self._changed()
        return CreatedKey(key, token)

    def list(self, include_revoked: bool = False) -> list[ApiKey]:
        sql = "SELECT key_id, role, name, created_at, revoked_at FROM api_keys"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        return [ApiKey(*row) for row in self._db.query(sql + " ORDER BY created_at, key_id")]

    def revoke(self, key_id: str) -> ApiKey:
        now = datetime.now(UTC).isoformat()
        with self._db.tx() as con:
            # revoking twice is harmless: the key stays revoked with its first date
            con.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (now, key_id),
            )
        self._changed()
        rows = self._db.query(
            "SELECT key_id, role, name, created_at, revoked_at FROM api_keys WHERE key_id = ?",
            (key_id,),
        )
        if not rows:
            raise NotFound(f"no API key {key_id!r}", hint="list keys with `personify keys list`")
        return ApiKey(*rows[0])

    def verify(self, token: str) -> ApiKey | None:
        """The live key for a token, or None (unknown or revoked)."""
        if not token.startswith("pk_"):
            return None
        wanted = digest(token)
        version = self._version()  # before the read: a racing revoke then empties the cache
        with self._cache_lock:
            if version != self._verified_at:
                self._verified.clear()
                self._verified_at = version
            found = self._verified.get(wanted)
        if found is not None:
            return found
        rows = self._db.query(
            "SELECT key_id, role, name, created_at, revoked_at, digest FROM api_keys "
            "WHERE digest = ?",
            (wanted,),
        )
        if not rows or not hmac.compare_digest(rows[0][5], wanted) or rows[0][4] is not None:
            return None
        key = ApiKey(*rows[0][:5])
        with self._cache_lock:
            if version == self._verified_at and len(self._verified) < _MAX_VERIFIED:
                self._verified[wanted] = key
        return key

    def close(self) -> None:
        self._db.close()
        if self._watch is not None:
            self._watch.close()
