"""An erasure that does not suppress (Segment's DELETE_ONLY) lets the person's future events
in; those must start a new profile, never bring back the erased one from processing's
in-memory working set (documents, identity keys, segment state)."""

from __future__ import annotations

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
        original = p.stores.profiles.delete_profiles
        injected: list[bool] = []

        def meanwhile(ids: Any) -> int:
            removed = original(ids) if when == "after" else 0
            if not injected:  # once: the erasure's own delete of the person's profile
                injected.append(True)
                p.identify(user_id="u2", traits={"email": TRAITS["email"]})
                p.drain()
            return removed if when == "after" else original(ids)

        monkeypatch.setattr(p.stores.profiles, "delete_profiles", meanwhile)
        erase(p, "email", TRAITS["email"], suppress=False)
        assert injected
        assert _stored(p) == []
        assert p.stores.events.timeline([erased_id, other_id], 100, None) == []
    finally:
        p.close()
