"""A ProfileStore wrapper that keeps PII unreadable at rest (``privacy.encrypt_pii``).

The resolver and processor see plain documents; underneath:

- identity keys of kind ``email`` and ``phone`` are stored as HMAC pseudonyms, so lookups
  still work (the same value gives the same key) but the table holds no address or number;
- in each document, the ``email`` and ``phone`` identities and the values of PII and
  sensitive traits are sealed with AES-256-GCM (:mod:`personify.privacy.pii`);
- merge records keep the moved email/phone keys only as pseudonyms.

Without the keyring a copy of ``state.sqlite`` yields no email, phone or named trait.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from personify.privacy.pii import FieldCipher, Resealed, is_sealed
from personify.privacy.secret import pseudonym
from personify.storage.ports import ProfileChanges, ProfileStore

HASHED_KINDS = frozenset({"email", "phone"})


class EncryptedProfileStore:
    def __init__(
        self,
        inner: ProfileStore,
        cipher: FieldCipher,
        secret: bytes,
        protected_traits: Iterable[str],
    ) -> None:
        self.inner = inner
        self.cipher = cipher
        self._secret = secret
        self._protected = frozenset(protected_traits)

    # -- keys -------------------------------------------------------------------------------
    def _key(self, key: tuple[str, str]) -> tuple[str, str]:
        kind, value = key
        if kind in HASHED_KINDS:
            return kind, "hmac:" + pseudonym(self._secret, kind, value)
        return key

    # -- documents --------------------------------------------------------------------------
    def _seal_doc(self, doc: dict[str, Any]) -> dict[str, Any]:
        out = dict(doc)
        identities = dict(doc.get("identities") or {})
        for kind in HASHED_KINDS & set(identities):
            identities[kind] = [
                v if is_sealed(v) else self.cipher.seal(v.encode(), kind) for v in identities[kind]
            ]
        out["identities"] = identities
        traits = dict(doc.get("traits") or {})
        for name in self._protected & set(traits):
            trait = traits[name]
            if isinstance(trait, dict) and "value" in trait:
                if not is_sealed(trait["value"]):
                    sealed = self.cipher.seal(orjson.dumps(trait["value"]), f"trait:{name}")
                    traits[name] = {**trait, "value": sealed}
            elif not is_sealed(trait):
                traits[name] = self.cipher.seal(orjson.dumps(trait), f"trait:{name}")
        out["traits"] = traits
        return out

    def _open_doc(self, doc: dict[str, Any]) -> dict[str, Any]:
        identities = doc.get("identities") or {}
        for kind in HASHED_KINDS & set(identities):
            identities[kind] = [
                self.cipher.open(v, kind).decode() if is_sealed(v) else v for v in identities[kind]
            ]
        traits = doc.get("traits") or {}
        for name, trait in traits.items():
            if isinstance(trait, dict) and is_sealed(trait.get("value")):
                trait["value"] = orjson.loads(self.cipher.open(trait["value"], f"trait:{name}"))
            elif is_sealed(trait):
                traits[name] = orjson.loads(self.cipher.open(trait, f"trait:{name}"))
        return doc

    def _merge_record(self, merge: dict[str, Any]) -> dict[str, Any]:
        moved = merge.get("identities") or []
        return {
            **merge,
            "identities": [
                list(self._key((k, v)))
                if k in HASHED_KINDS and not v.startswith("hmac:")
                else [k, v]
                for k, v in moved
            ],
        }

    # -- the port ---------------------------------------------------------------------------
    def get_many(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {pid: self._open_doc(doc) for pid, doc in self.inner.get_many(profile_ids).items()}

    def lookup_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        stored = {self._key(k): k for k in keys}
        found = self.inner.lookup_many(stored)
        return {stored[k]: pid for k, pid in found.items()}

    def apply(self, changes: ProfileChanges, checkpoint: int | None = None) -> None:
        sealed = ProfileChanges(
            profiles={pid: self._seal_doc(doc) for pid, doc in changes.profiles.items()},
            identities={self._key(k): pid for k, pid in changes.identities.items()},
            merges=[self._merge_record(m) for m in changes.merges],
            conflicts=changes.conflicts,
        )  # ``encoded`` holds plain JSON: never passed on
        self.inner.apply(sealed, checkpoint)

    def settle(self) -> None:
        self.inner.settle()

    def checkpoint(self) -> int:
        return self.inner.checkpoint()

    def history(self, profile_id: str) -> dict[str, list[dict[str, Any]]]:
        return self.inner.history(profile_id)

    def count(self) -> int:
        return self.inner.count()

    def scan(self, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        for batch in self.inner.scan(batch_size):
            yield [self._open_doc(doc) for doc in batch]

    def delete_profiles(self, profile_ids: Iterable[str]) -> int:
        return self.inner.delete_profiles(profile_ids)

    def merged_into(self, profile_ids: Iterable[str]) -> list[str]:
        return self.inner.merged_into(profile_ids)  # ids are never sealed

    def close(self) -> None:
        self.inner.close()

    # -- key rotation -----------------------------------------------------------------------
    def reseal(self, batch_size: int = 500) -> int:
        """Re-encrypt every stored document with the current key; returns how many.

        Live profiles and the merged-away profiles they absorbed are read, opened with
        whichever key sealed them and written back sealed with the current key. Run it with
        processing stopped or paused (it writes whole documents).
        """
        return sum(batch.resealed for batch in self.reseal_batches(batch_size))

    def reseal_batches(self, batch_size: int = 500) -> Iterator[Resealed]:
        """:meth:`reseal` one batch per step, so a caller can hold the processor's lock
        around each step (under ``serve`` the worker does) and report progress."""
        for batch in self.inner.scan(batch_size):
            merged = [pid for doc in batch for pid in doc.get("merged_from") or ()]
            docs = [*batch, *self.inner.get_many(merged).values()]
            stale = {str(d["profile_id"]): self._open_doc(d) for d in docs if self._needs_reseal(d)}
            if stale:
                self.apply(ProfileChanges(profiles=stale))
                self.inner.settle()  # stored (or raised) before the caller lets processing on
            yield Resealed(len(docs), len(stale))

    def _needs_reseal(self, doc: dict[str, Any]) -> bool:
        values: Sequence[Any] = [
            *(v for k in HASHED_KINDS for v in (doc.get("identities") or {}).get(k, [])),
            *(
                t.get("value") if isinstance(t, dict) else t
                for t in (doc.get("traits") or {}).values()
            ),
        ]
        return any(is_sealed(v) and not self.cipher.is_current(v) for v in values)
