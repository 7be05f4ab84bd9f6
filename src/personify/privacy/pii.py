"""PII classification and field encryption (AES-256-GCM) with a rotating keyring.

Traits are classified as ``pii`` (identify a person: email, phone, name, address...),
``sensitive`` (special categories the workspace lists) or ``ordinary``. PII and sensitive
values are sealed at rest as ``enc:1:<key id>:<base64url(nonce | ciphertext+tag)>``; the
field name is authenticated data, so a sealed value cannot be moved to another field.

The keyring (``<data_dir>/pii.keys``, mode 0600, or ``privacy.pii_key``) holds every key
still needed to read old values and names the current one; :func:`rotate_keyring` adds a
key and makes it current, and re-sealing every stored value (:mod:`personify.privacy.rotation`:
profiles, the event log, the event store and the quarantine) lets the old keys be retired.

>>> ring = Keyring({"k1": bytes(32)}, "k1")
>>> sealed = FieldCipher(ring).seal(b'"ann@example.com"', "email")
>>> sealed.startswith("enc:1:k1:"), FieldCipher(ring).open(sealed, "email")
(True, b'"ann@example.com"')
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from personify.config import Settings
from personify.errors import Unavailable

if TYPE_CHECKING:
    from personify.facade import Stores

PREFIX = "enc:1:"
KEY_FILE = "pii.keys"


def classify(trait: str, pii: Iterable[str], sensitive: Iterable[str] = ()) -> str:
    """``pii``, ``sensitive`` or ``ordinary`` for a trait name (the lists are
    ``privacy.pii_traits`` and ``privacy.sensitive_traits``)."""
    if trait in set(pii):
        return "pii"
    if trait in set(sensitive):
        return "sensitive"
    return "ordinary"


@dataclass(frozen=True)
class Keyring:
    keys: Mapping[str, bytes]
    current: str

    def as_json(self) -> bytes:
        return orjson.dumps(
            {"current": self.current, "keys": {k: v.hex() for k, v in self.keys.items()}}
        )

    @classmethod
    def from_json(cls, data: bytes) -> Keyring:
        raw = orjson.loads(data)
        return cls({k: bytes.fromhex(v) for k, v in raw["keys"].items()}, str(raw["current"]))

    def current_only(self) -> Keyring:
        """The keyring without its old keys (once no value sealed with them remains)."""
        return Keyring({self.current: self.keys[self.current]}, self.current)


def load_keyring(configured: str | None, data_dir: Path | None) -> Keyring:
    """The key from settings (hex, 32 bytes), else the keyring file (created once, 0600)."""
    if configured:
        key = bytes.fromhex(configured)
        if len(key) != 32:
            raise Unavailable(
                "privacy.pii_key must be 64 hex characters (a 256-bit key)",
                hint="generate one with: python -c 'import secrets; print(secrets.token_hex(32))'",
            )
        return Keyring({"settings": key}, "settings")
    if data_dir is None:
        return Keyring({"memory": AESGCM.generate_key(bit_length=256)}, "memory")
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        kid = f"k1_{secrets.token_hex(3)}"  # random: a lost keyring is never mistaken
        ring = Keyring({kid: AESGCM.generate_key(bit_length=256)}, kid)
        _write_private(path, ring.as_json(), exclusive=True)
    return Keyring.from_json(path.read_bytes())


def rotate_keyring(data_dir: Path) -> Keyring:
    """Add a new current key to the keyring file (old keys stay until values are resealed)."""
    path = data_dir / KEY_FILE
    new = with_new_key(Keyring.from_json(path.read_bytes()))
    _write_private(path, new.as_json())
    return new


def with_new_key(ring: Keyring) -> Keyring:
    """The keyring plus a fresh random key, which becomes the current one."""
    kid = f"k{len(ring.keys) + 1}_{secrets.token_hex(3)}"
    return Keyring({**ring.keys, kid: AESGCM.generate_key(bit_length=256)}, kid)


def retire_keys(data_dir: Path) -> Keyring:
    """Keep only the current key (call after every value was resealed with it)."""
    path = data_dir / KEY_FILE
    only = Keyring.from_json(path.read_bytes()).current_only()
    _write_private(path, only.as_json())
    return only


def _write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if exclusive:
        try:  # the first process to create the keyring wins; the others read it
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    else:
        os.replace(tmp, path)


class FieldCipher:
    """Seals and opens field values with the keyring (AES-256-GCM, 96-bit random nonces).

    :meth:`use` swaps the keyring while other threads seal and open (key rotation under
    ``serve``); each call reads the keyring and its ciphers together, once.
    """

    def __init__(self, ring: Keyring) -> None:
        self._state = self._prepare(ring)

    @staticmethod
    def _prepare(ring: Keyring) -> tuple[Keyring, dict[str, AESGCM]]:
        return ring, {kid: AESGCM(key) for kid, key in ring.keys.items()}

    @property
    def ring(self) -> Keyring:
        return self._state[0]

    def use(self, ring: Keyring) -> None:
        """Seal with ``ring.current`` from now on, and open with any key of ``ring``."""
        self._state = self._prepare(ring)

    def seal(self, plain: bytes, field: str) -> str:
        ring, aead = self._state
        nonce = os.urandom(12)
        sealed = aead[ring.current].encrypt(nonce, plain, field.encode())
        token = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}{ring.current}:{token}"

    def open(self, sealed: str, field: str) -> bytes:
        kid, _, token = sealed[len(PREFIX) :].partition(":")
        aead = self._state[1].get(kid)
        if aead is None:
            raise Unavailable(
                f"a stored value was sealed with key {kid!r}, which the keyring lacks",
                hint="restore the pii.keys file (or privacy.pii_key) this data was written with",
            )
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        try:
            return aead.decrypt(raw[:12], raw[12:], field.encode())
        except InvalidTag:
            raise Unavailable(
                f"a sealed {field!r} value failed authentication",
                hint="the data or the keyring was altered; restore them from a backup",
            ) from None

    def is_current(self, sealed: str) -> bool:
        return sealed.startswith(f"{PREFIX}{self.ring.current}:")

    def reseal(self, sealed: str, field: str) -> str:
        """The value sealed again with the current key (unchanged if it already is)."""
        if self.is_current(sealed):
            return sealed
        return self.seal(self.open(sealed, field), field)


class Resealed(NamedTuple):
    """One batch of a key-rotation pass over a store."""

    examined: int  # values, messages or documents looked at
    resealed: int  # of those, how many were sealed again with the current key


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def protect(stores: Stores, settings: Settings) -> None:
    """Wrap the stores that hold personal data so PII is sealed at rest
    (``privacy.encrypt_pii``): profiles, the event log, the event store, the quarantine."""
    from personify.privacy.encrypted_store import EncryptedProfileStore
    from personify.privacy.sealing import (
        MessageSealer,
        SealingEventLog,
        SealingEventStore,
        SealingQuarantine,
    )
    from personify.privacy.secret import load_secret

    conf = settings.privacy
    data = settings.data_dir if settings.state_backend == "sqlite" else None
    cipher = FieldCipher(load_keyring(conf.pii_key, data))
    protected = [*conf.pii_traits, *conf.sensitive_traits]
    stores.profiles = EncryptedProfileStore(
        stores.profiles, cipher, load_secret(conf.secret, data), protected
    )
    sealer = MessageSealer(cipher, protected)
    stores.log = SealingEventLog(stores.log, sealer)
    stores.events = SealingEventStore(stores.events, sealer)
    stores.quarantine = SealingQuarantine(stores.quarantine, sealer)
