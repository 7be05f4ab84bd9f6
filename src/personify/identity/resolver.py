"""Deterministic identity resolution over the identity graph.

Identities are ``(kind, value)`` keys: ``user_id``, ``anonymous_id``, normalized ``email``
and E.164 ``phone``. Each key points at one live profile. Resolving a message:

* no key known → a new profile holding all of them;
* keys of one profile → the new keys join it, unless the message names a ``userId`` the
  profile does not have while it already has another: then a new profile is made for that
  user and the *conflict* is recorded (a shared device or a shared e-mail is not a merge);
* keys of several profiles → they merge into one (the one with a ``userId``, else the
  oldest), unless two of them carry different ``userId``\\ s: never merged silently, the
  conflict is recorded and the event goes to the profile of its strongest identity;
* ``alias`` is an explicit instruction: ``previousId``'s profile merges into ``userId``'s.

Junk values (``null``, ``undefined``, ``0``...) are never used as keys. Profile ids are
derived from the message id, so replaying a message after a crash gives the same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

import orjson

from personify.identity.normalize import JunkFilter, normalize_email, normalize_phone
from personify.profiles.records import IDENTITY_KINDS, combine_computed, new_profile, set_trait
from personify.storage.ports import ProfileChanges, ProfileStore

Key = tuple[str, str]


def profile_id_for(message_id: str, salt: str = "") -> str:
    digest = hashlib.blake2b(f"{message_id}\x00{salt}".encode(), digest_size=12).hexdigest()
    return "p_" + digest


class Resolver:
    """Resolves messages to profiles, holding a write-through working set of the graph.

    The processor is the only writer of the profile store, so the caches here stay true;
    after a failed write the processor calls :meth:`reset` and replays from its checkpoint.
    """

    def __init__(
        self,
        store: ProfileStore,
        junk: JunkFilter,
        *,
        phone_region: str,
        trait_priority: Mapping[str, list[str]],
        cache_size: int,
    ) -> None:
        self._store = store
        self._junk = junk
        self._region = phone_region
        self._priority = trait_priority
        self._cache_size = cache_size
        self.reset()

    def reset(self) -> None:
        # Parsed documents, kept between batches. (Keeping them as orjson bytes instead was
        # tried: parsing a document again in every batch that touches it cost more than the
        # garbage collector saves.)
        self._docs = _Bounded(self._cache_size)
        self._ident = _Bounded(self._cache_size * 2)
        self.changes = ProfileChanges()

    # -- keys ---------------------------------------------------------------------------
    def keys_of(self, message: Mapping[str, Any]) -> list[Key]:
        """Identity keys a message carries, strongest first, junk removed."""
        keys: list[Key] = []
        user = self._junk.clean(message.get("userId"))
        if user is not None:
            keys.append(("user_id", user))
        for source in (message.get("traits"), (message.get("context") or {}).get("traits")):
            if not source or not isinstance(source, dict):
                continue
            if "email" in source:
                email = normalize_email(source["email"])
                if email is not None and not self._junk.is_junk(email):
                    keys.append(("email", email))
            if "phone" in source:
                phone = normalize_phone(source["phone"], self._region)
                if phone is not None:
                    keys.append(("phone", phone))
        anon = self._junk.clean(message.get("anonymousId"))
        if anon is not None:
            keys.append(("anonymous_id", anon))
        return list(dict.fromkeys(keys)) if len(keys) > 2 else keys

    def usable(self, message: Mapping[str, Any]) -> bool:
        return bool(self.keys_of(message)) or (
            message.get("type") == "alias"
            and self._junk.clean(message.get("previousId")) is not None
        )

    # -- working set ----------------------------------------------------------------------
    def prefetch(self, messages: Iterable[tuple[Mapping[str, Any], list[Key]]]) -> None:
        """Load from the store, in bulk, the identities and profiles a batch will touch."""
        missing: list[Key] = []
        for m, keys in messages:
            if m.get("type") == "alias":
                prev = self._junk.clean(m.get("previousId"))
                if prev is not None:
                    keys += [("user_id", prev), ("anonymous_id", prev)]
            missing.extend(k for k in keys if self._ident.get(k) is None)
        if not missing:
            return
        found = self._store.lookup_many(missing)
        for key in missing:
            # "" marks a key known to be absent: this processor is the graph's only writer.
            self._ident.set(key, found.get(key, ""))
        need = [pid for pid in set(found.values()) if self._docs.get(pid) is None]
        for pid, doc in self._store.get_many(need).items():
            self._docs.set(pid, doc)

    def lookup(self, key: Key) -> str | None:
        pid = self.changes.identities.get(key) or self._ident.get(key)
        if pid is None:
            pid = self._store.lookup_many([key]).get(key, "")
            self._ident.set(key, pid)
        # Merges move every identity to the survivor, so a mapped key names a live profile.
        return pid or None

    def doc(self, pid: str) -> dict[str, Any]:
        doc = self._docs.get(pid) or self.changes.profiles.get(pid)
        if doc is None:
            doc = self._store.get_many([pid])[pid]
            self._docs.set(pid, doc)
        assert isinstance(doc, dict)
        return doc

    def survivor(self, pid: str) -> str:
        seen = 0
        while True:
            nxt = self.doc(pid).get("merged_into")
            if not nxt or seen > 64:
                return pid
            pid, seen = nxt, seen + 1

    def _touch(self, doc: dict[str, Any]) -> None:
        self.changes.profiles[doc["profile_id"]] = doc

    def _attach(self, pid: str, keys: Iterable[Key]) -> None:
        doc = self.doc(pid)
        for key in keys:
            kind, value = key
            if value not in doc["identities"][kind]:
                doc["identities"][kind].append(value)
            self._ident.set(key, pid)
            self.changes.identities[key] = pid
        self._touch(doc)

    def _create(self, message_id: str, at: str, keys: list[Key], salt: str = "") -> str:
        pid = profile_id_for(message_id, salt)
        self._docs.set(pid, new_profile(pid, at))
        self._attach(pid, keys)
        return pid

    def _merge(self, survivor: str, loser: str, reason: str, message_id: str, at: str) -> None:
        s, lose = self.doc(survivor), self.doc(loser)
        moved: list[Key] = [(k, v) for k in IDENTITY_KINDS for v in lose["identities"][k]]
        self._attach(survivor, moved)
        for name, trait in sorted(lose["traits"].items(), key=lambda kv: kv[1]["at"]):
            set_trait(s, name, trait["value"], trait["source"], trait["at"], self._priority)
        combine_computed(s["computed"], lose["computed"])
        for g in lose["groups"]:
            if g not in s["groups"]:
                s["groups"].append(g)
        s["merged_from"] = [*s["merged_from"], loser, *lose["merged_from"]]
        if s["created_at"] > lose["created_at"]:
            s["created_at"] = lose["created_at"]
        lose["merged_into"] = survivor
        lose["identities"] = {kind: [] for kind in IDENTITY_KINDS}
        self._touch(lose)
        self._touch(s)
        self.changes.merges.append(
            {
                "survivor_id": survivor,
                "merged_id": loser,
                "reason": reason,
                "message_id": message_id,
                "at": at,
                "identities": [list(k) for k in moved],
            }
        )

    def _conflict(self, pids: list[str], detail: str, message_id: str, at: str) -> None:
        self.changes.conflicts.append(
            {"profile_ids": pids, "detail": detail, "message_id": message_id, "at": at}
        )

    # -- resolution -------------------------------------------------------------------------
    def resolve(self, message: Mapping[str, Any], at: str, keys: list[Key] | None = None) -> str:
        """The profile a message belongs to, linking and merging as the rules say."""
        mid = str(message["messageId"])
        if message.get("type") == "alias":
            return self._resolve_alias(message, mid, at)
        if keys is None:
            keys = self.keys_of(message)
        if len(keys) == 1:  # the common case: one identifier, known or new
            pid = self.lookup(keys[0])
            return pid if pid is not None else self._create(mid, at, keys)
        found = {k: pid for k in keys if (pid := self.lookup(k)) is not None}
        pids = list(dict.fromkeys(found.values()))
        if not pids:
            return self._create(mid, at, keys)
        if len(pids) == 1 and len(found) == len(keys):
            return pids[0]  # the common case: every identity already on one profile
        user = keys[0][1] if keys[0][0] == "user_id" else None
        users = {p: self.doc(p)["identities"]["user_id"] for p in pids}
        if user is not None:
            # Profiles of other users are never merged into this user's profile.
            foreign = [p for p in pids if users[p] and user not in users[p]]
            compatible = [p for p in pids if p not in foreign]
        else:
            owners = [p for p in pids if users[p]]
            strongest = found[next(k for k in keys if k in found)]
            foreign = [p for p in owners if p != strongest] if len(owners) > 1 else []
            compatible = [p for p in pids if p not in foreign]
        if compatible:
            own = [p for p in compatible if users[p]]
            target = own[0] if own else min(compatible, key=lambda p: self.doc(p)["created_at"])
            for p in compatible:
                if p != target:
                    self._merge(target, p, "identify", mid, at)
        else:
            target = ""
        unmapped = [k for k in keys if k not in found]
        if not target:
            target = self._create(mid, at, unmapped, salt="conflict")
        else:
            self._attach(target, unmapped)
        if foreign:
            others = ", ".join(repr(users[p][0]) for p in foreign)
            self._conflict(
                [target, *foreign],
                f"identities of {user or 'this visitor'!r} also belong to user {others}; "
                "kept apart",
                mid,
                at,
            )
        return target

    def _resolve_alias(self, message: Mapping[str, Any], mid: str, at: str) -> str:
        keys = self.keys_of(message)
        prev = self._junk.clean(message.get("previousId"))
        prev_pid = None
        if prev is not None:
            prev_pid = self.lookup(("user_id", prev)) or self.lookup(("anonymous_id", prev))
        found = {k: pid for k in keys if (pid := self.lookup(k)) is not None}
        target = next(iter(found.values()), None)
        if target is None and prev_pid is None:
            extra = [("anonymous_id", prev)] if prev is not None else []
            return self._create(mid, at, [*keys, *extra])
        if target is None:
            assert prev_pid is not None
            self._attach(prev_pid, keys)
            return prev_pid
        if prev_pid is None:
            self._attach(target, [k for k in keys if k not in found])
            if prev is not None:
                self._attach(target, [("anonymous_id", prev)])
            return target
        if prev_pid != target:
            self._merge(target, prev_pid, "alias", mid, at)
        self._attach(target, [k for k in keys if k not in found])
        return target

    def forget(self, profile_ids: Iterable[str]) -> None:
        """Drop erased profiles from the working set: their documents and every identity
        key that points at them (the next message with such a key is resolved afresh)."""
        gone = set(profile_ids)
        for pid in gone:
            self._docs.pop(pid, None)
        for key in [k for k, pid in self._ident.items() if pid in gone]:
            del self._ident[key]

    def resolve_readonly(self, message: Mapping[str, Any]) -> str | None:
        """The current profile of a message's strongest known identity, changing nothing."""
        for key in self.keys_of(message):
            pid = self.lookup(key)
            if pid is not None:
                return pid
        return None

    def take_changes(self) -> ProfileChanges:
        """Hand over the batch's changes, each changed document serialized once.

        The bytes go in ``encoded``, which the store writes as is.
        """
        changes, self.changes = self.changes, ProfileChanges()
        dumps = orjson.dumps
        changes.encoded = {pid: dumps(doc) for pid, doc in changes.profiles.items()}
        return changes

    def apply_traits(self, pid: str, traits: Mapping[str, Any], source: str, at: str) -> None:
        doc = self.doc(pid)
        for name, value in traits.items():
            set_trait(doc, str(name), value, source, at, self._priority)
        self._touch(doc)

    def touch(self, pid: str) -> dict[str, Any]:
        doc = self.doc(pid)
        self._touch(doc)
        return doc


class _Bounded(dict[Any, Any]):
    """A bounded map for the single-threaded working set (oldest entries evicted first).

    A ``dict`` subclass, so reads are the built-in ``dict.get`` (this is hit several times
    per message); only inserting goes through Python.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = max(size, 16)

    def set(self, key: Any, value: Any) -> None:
        self[key] = value
        if len(self) > self._size:
            for old in list(islice(self, self._size // 10 or 1)):
                del self[old]
