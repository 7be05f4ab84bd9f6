"""The suppression list: pseudonyms of erased identities whose late events are dropped.

After an erasure, SDKs and batch jobs keep sending events for a while (offline queues,
nightly imports). Storing the raw identifiers to recognise them would defeat the erasure,
so the list holds only HMAC pseudonyms (:func:`personify.privacy.secret.pseudonym`). The
collector asks :meth:`SuppressionList.matches` for every message once the list is not empty.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from personify.identity.normalize import normalize_email, normalize_phone
from personify.privacy.db import Db
from personify.privacy.secret import pseudonym

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressed (
    pseudonym TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    job_id TEXT,
    added_at TEXT NOT NULL
);
"""


def message_identities(msg: Mapping[str, Any], phone_region: str) -> list[tuple[str, str]]:
    """The identity keys a message carries, as the resolver reads them, plus the alias
    ``previousId`` (which may be either a user id or an anonymous id)."""
    out: list[tuple[str, str]] = []
    for field, kinds in (
        ("userId", ("user_id",)),
        ("anonymousId", ("anonymous_id",)),
        ("previousId", ("user_id", "anonymous_id")),
    ):
        value = _text(msg.get(field))
        if value:
            out += [(kind, value) for kind in kinds]
    context = msg.get("context")
    in_context = context.get("traits") if isinstance(context, Mapping) else None
    for traits in (msg.get("traits"), in_context):
        if not isinstance(traits, Mapping):
            continue
        email = normalize_email(traits["email"]) if "email" in traits else None
        if email:
            out.append(("email", email))
        phone = normalize_phone(traits["phone"], phone_region) if "phone" in traits else None
        if phone:
            out.append(("phone", phone))
    return out


def _text(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None


class SuppressionList:
    """Pseudonyms in ``suppression.sqlite`` (or memory), mirrored in a set for fast checks."""

    def __init__(self, path: Path | None, secret: bytes, phone_region: str) -> None:
        self._db = Db(path, _SCHEMA)
        self._secret = secret
        self._region = phone_region
        self._lock = threading.Lock()
        self._set = {row[0] for row in self._db.query("SELECT pseudonym FROM suppressed")}
        self.dropped = 0

    def add(self, identities: Iterable[tuple[str, str]], job_id: str | None = None) -> int:
        now = datetime.now(UTC).isoformat()
        rows = [(pseudonym(self._secret, k, v), k, job_id, now) for k, v in identities]
        with self._db.tx() as con:
            con.executemany(
                "INSERT OR IGNORE INTO suppressed (pseudonym, kind, job_id, added_at) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
        with self._lock:
            self._set.update(r[0] for r in rows)
        return len(rows)

    def __len__(self) -> int:
        return len(self._set)

    def contains(self, kind: str, value: str) -> bool:
        return pseudonym(self._secret, kind, value) in self._set

    def matches(self, msg: Mapping[str, Any]) -> bool:
        """Whether a message names a suppressed identity (counted in ``dropped``)."""
        if not self._set:
            return False
        hit = any(self.contains(k, v) for k, v in message_identities(msg, self._region))
        if hit:
            with self._lock:
                self.dropped += 1
        return hit

    def close(self) -> None:
        self._db.close()
