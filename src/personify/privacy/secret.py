"""The workspace secret and the HMAC pseudonyms derived from it.

A pseudonym is ``HMAC-SHA256(secret, kind + ":" + normalized value)``: stable, so the same
email joins across exports and the suppression list, but unreadable and not reversible
without the secret (a plain hash of an email can be reversed by hashing a list of emails).

>>> p = pseudonym(b"k" * 32, "email", "a@example.com")
>>> len(p), p == pseudonym(b"k" * 32, "email", "a@example.com")
(64, True)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_FILE = "privacy.key"


def load_secret(configured: str | None, data_dir: Path | None) -> bytes:
    """The secret from settings, else from ``<data_dir>/privacy.key`` (created 0600 once).

    With neither (memory backend), a random per-process secret: pseudonyms are then only
    stable for the life of the process, which is all an in-memory store lives.
    """
    if configured:
        return configured.encode("utf-8")
    if data_dir is None:
        return secrets.token_bytes(32)
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{KEY_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:  # a hard link never replaces: the first process to create the file wins
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode("utf-8")


def pseudonym(secret: bytes, kind: str, value: str) -> str:
    """The HMAC-SHA256 pseudonym of an identity (hex)."""
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
