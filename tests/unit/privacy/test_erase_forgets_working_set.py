"""An erasure that does not suppress (Segment's DELETE_ONLY) lets the person's future events
in; those must start a new profile, never bring back the erased one from processing's
in-memory working set (documents, identity keys, segment state)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.unit.helpers import T0, memory_engine

from personify.clock import FixedClock
from personify.config import Settings
from personify.facade import Personify
from personify.platform import build
from personify.privacy.subject import erase

TRAITS = {"email": "ada@example.com", "first_name": "Ada", "plan": "pro"}


def _stored(p: Personify) -> list[dict[str, Any]]:
    return [doc for page in p.stores.profiles.scan(100) for doc in page]


def _while_deleting(
    monkeypatch: pytest.MonkeyPatch,
    p: Personify,
    when: str,
    message: Callable[[], None],
    store: Any = None,
) -> list[bool]:
    """Process ``message`` during the erasure's first delete of profiles (or its first call
    of ``store.delete_profiles``): just ``before`` it, or just ``after`` it (before
    processing forgets them). Returns a list that holds ``True`` once that happened."""
    store = p.stores.profiles if store is None else store
    original = store.delete_profiles
    injected: list[bool] = []

    def meanwhile(ids: Any) -> int:
        removed = original(ids) if when == "after" else 0
        if not injected:  # once: the erasure's own delete of the person's profiles
            injected.append(True)
            message()
            p.drain()
        return removed if when == "after" else original(ids)

    monkeypatch.setattr(store, "delete_profiles", meanwhile)
    return injected


def _buyers(p: Personify) -> None:
    body = {"key": "buyers", "condition": {"computed.orders": {"$gte": 1}}}
    p.stores.definitions.put("segment", "buyers", body, actor="test")
    assert p.segment_engine is not None
    p.segment_engine.reload()


def _check(p: Personify) -> None:
    _buyers(p)
    p.identify(user_id="u1", traits=TRAITS)
    p.track(user_id="u1", event="Order Completed", properties={"revenue": 10})
    p.drain()
    erased_id = p.lookup("user_id", "u1")
    assert p.profile(erased_id)["segments"] == ["buyers"]
    erase(p, "user_id", "u1", suppress=False)
    assert _stored(p) == []

    p.track(user_id="u1", event="Page Viewed")  # let in: nothing was suppressed
    p.drain()
    [doc] = _stored(p)
    assert doc["profile_id"] != erased_id
    assert doc["traits"] == {}
    assert doc["identities"]["email"] == []
    assert doc["computed"]["orders"] == 0
    profile = p.profile_by("user_id", "u1")
    assert profile["profile_id"] == doc["profile_id"]
    assert profile["segments"] == []
    assert p.stores.segments.memberships_of(erased_id) == {}
    assert p.stores.segments.history(erased_id) == []


def test_memory_backend() -> None:
    p, _ = memory_engine()
    try:
        _check(p)
    finally:
        p.close()


@pytest.mark.parametrize("background", [False, True], ids=["in-process", "writer-processes"])
def test_sqlite_files(tmp_path: Path, background: bool) -> None:
    settings = Settings(data_dir=tmp_path, write_keys="wk=web", admin_key="admin")
    p = build(settings, FixedClock(T0), background_writes=background)
    try:
        _check(p)
    finally:
        p.close()


def test_a_message_processed_while_the_erasure_runs_is_erased_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p, _ = memory_engine()
    try:
        p.identify(user_id="u1", traits=TRAITS)
        p.drain()
        erased_id = p.lookup("user_id", "u1")
        original = p.stores.profiles.delete_profiles
        injected: list[bool] = []

        def meanwhile(ids: Any) -> int:
            if not injected:  # once: a message that arrives after the erasure's drain
                injected.append(True)
                p.track(user_id="u1", event="Meanwhile")
                p.drain()
            return original(ids)

        monkeypatch.setattr(p.stores.profiles, "delete_profiles", meanwhile)
        summary = erase(p, "user_id", "u1", suppress=False)
        assert injected
        assert summary["events"] == 2  # the identify, and the message processed meanwhile
        assert p.stores.events.timeline([erased_id], 100, None) == []
        assert _stored(p) == []
    finally:
        p.close()


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_profile_that_merged_the_person_while_the_erasure_ran_is_erased_too(
    monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """A message let in during the erasure can link the person to another profile, and the
    merge copies the person's traits and identities onto it: that profile is the person's
    now (as if the message had come first), so it goes too."""
    p, _ = memory_engine()
    try:
        p.identify(user_id="u2", anonymous_id="b-device")  # a user's profile: it survives merges
        p.identify(anonymous_id="a-device", traits=TRAITS)  # the person, known by email only
        p.drain()
        erased_id, other_id = p.lookup("email", TRAITS["email"]), p.lookup("user_id", "u2")
        injected = _while_deleting(
            monkeypatch,
            p,
            when,
            lambda: p.identify(user_id="u2", traits={"email": TRAITS["email"]}),
        )
        erase(p, "email", TRAITS["email"], suppress=False)
        assert injected
        assert _stored(p) == []
        assert p.stores.events.timeline([erased_id, other_id], 100, None) == []
    finally:
        p.close()


def _engine(backend: str, tmp_path: Path) -> Personify:
    if backend == "memory":
        return memory_engine()[0]
    settings = Settings(data_dir=tmp_path, write_keys="wk=web", admin_key="admin")
    return build(settings, FixedClock(T0))


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_profile_the_person_merged_while_the_erasure_ran_is_erased_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, when: str, backend: str
) -> None:
    """The reverse: the message let in makes the person's profile the survivor and merges
    a visitor's profile into it. Deleting the person's profile takes the visitor's identity
    keys with it, and the visitor's document is left pointing (``merged_into``) at a
    profile that is gone: it is the person's too (as if the message had come first), so it
    goes, with its events."""
    p = _engine(backend, tmp_path)
    try:
        p.identify(user_id="u1", traits=TRAITS)  # the person: a user's profile survives merges
        p.track(anonymous_id="c-device", event="Page Viewed")  # a visitor, not linked yet
        p.identify(anonymous_id="c-device", traits={"colour": "teal"})
        p.drain()
        erased_id, visitor_id = p.lookup("user_id", "u1"), p.lookup("anonymous_id", "c-device")
        assert erased_id != visitor_id
        injected = _while_deleting(
            monkeypatch, p, when, lambda: p.identify(user_id="u1", anonymous_id="c-device")
        )
        summary = erase(p, "user_id", "u1", suppress=False)
        assert injected
        store = p.stores.profiles
        assert store.get_many([erased_id, visitor_id]) == {}
        assert store.merged_into([erased_id, visitor_id]) == []
        assert store.lookup_many([("user_id", "u1"), ("anonymous_id", "c-device")]) == {}
        assert store.history(visitor_id) == {"merges": [], "conflicts": []}
        assert p.stores.events.timeline([erased_id, visitor_id], 100, None) == []
        assert summary["profiles"] == 2
        assert summary["events"] == 4  # the person's, the visitor's two, the one meanwhile
    finally:
        p.close()


@pytest.mark.parametrize(
    ("joined", "sender"),
    [
        ("b-device", {"user_id": "u2"}),  # the user's profile absorbs the person's
        ("c-device", {"anonymous_id": "c-device"}),  # the person's absorbs the visitor's
    ],
    ids=["into-another", "another-into-theirs"],
)
def test_quarantined_items_naming_an_identity_only_the_erasure_found_are_blanked(
    monkeypatch: pytest.MonkeyPatch, joined: str, sender: dict[str, str]
) -> None:
    """The identities of a profile that joins the person while the erasure runs are learnt
    when it is found (the profile that absorbed theirs) or read from the person's profile
    before it is deleted (a visitor's merged into it): quarantined items naming them are
    searched for too. The message comes right after the drain (as the erasure deletes the
    person's events)."""
    p, _ = memory_engine()
    try:
        p.identify(user_id="u2", anonymous_id="b-device")  # a user's profile
        p.identify(anonymous_id="a-device", traits=TRAITS)  # the person, known by email only
        p.identify(anonymous_id="c-device", traits={"colour": "teal"})  # a visitor
        p.drain()
        naming = ["b-device", "c-device", "z-device"]
        item_ids = p.stores.quarantine.add(
            [
                {
                    "payload": {"anonymousId": who, "type": "track"},
                    "reason": "no event name",
                    "problems": [],
                    "source": "api",
                    "received_at": "2024-05-01T12:00:00.000000Z",
                }
                for who in naming
            ]
        )
        injected = _while_deleting(
            monkeypatch,
            p,
            "before",
            lambda: p.identify(**sender, traits={"email": TRAITS["email"]}),
            p.stores.events,
        )
        summary = erase(p, "email", TRAITS["email"], suppress=False)
        assert injected
        assert summary["quarantined"] == 1
        for who, item_id in zip(naming, item_ids, strict=True):
            item = p.stores.quarantine.get(item_id)
            assert item is not None
            assert (item["status"], item["payload"] == {}) == (
                ("erased", True) if who == joined else ("quarantined", False)
            )
    finally:
        p.close()
