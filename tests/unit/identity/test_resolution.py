"""Identity resolution through the real collector and processor on memory adapters."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.helpers import memory_engine

from personify.errors import InvalidInput
from personify.facade import Personify


@pytest.fixture
def p() -> Personify:
    engine, _ = memory_engine()
    return engine


def send(p: Personify, kind: str, **msg: Any) -> None:
    p.send(kind, msg)
    p.drain()


def test_identify_after_anonymous_browsing_merges_the_history(p: Personify) -> None:
    send(p, "page", anonymousId="anon-1", name="Home")
    send(p, "track", anonymousId="anon-1", event="Product Viewed")
    anon_pid = p.lookup("anonymous_id", "anon-1")
    send(p, "identify", anonymousId="anon-1", userId="u1", traits={"email": " Ada@Example.COM "})
    prof = p.profile_by("user_id", "u1")
    assert prof["profile_id"] == anon_pid
    assert prof["identities"]["email"] == ["ada@example.com"]
    assert prof["computed"]["event_counts"] == {"page": 1, "Product Viewed": 1, "identify": 1}
    assert p.profile_by("email", "ADA@example.com")["profile_id"] == anon_pid


def test_two_anonymous_devices_merge_into_the_known_customer(p: Personify) -> None:
    send(p, "track", anonymousId="phone", event="Product Viewed")
    send(p, "identify", userId="u1", anonymousId="laptop")
    send(p, "track", anonymousId="laptop", event="Product Added")
    send(p, "identify", userId="u1", anonymousId="phone")
    prof = p.profile_by("user_id", "u1")
    assert sorted(prof["identities"]["anonymous_id"]) == ["laptop", "phone"]
    assert prof["computed"]["event_counts"]["Product Viewed"] == 1
    assert prof["computed"]["event_counts"]["Product Added"] == 1
    assert len(prof["history"]["merges"]) == 1
    merged = prof["merged_from"][0]
    # Lookups by the merged-away id find the survivor, and its events are on the timeline.
    assert p.profile(merged)["profile_id"] == prof["profile_id"]
    assert {e["event"] for e in p.timeline(merged)} >= {"Product Viewed", "Product Added"}
    assert p.stores.profiles.count() == 1


def test_profiles_of_two_different_users_are_never_merged_silently(p: Personify) -> None:
    send(p, "identify", userId="alice", anonymousId="shared-tablet")
    send(p, "identify", userId="bob", anonymousId="shared-tablet")
    alice, bob = p.profile_by("user_id", "alice"), p.profile_by("user_id", "bob")
    assert alice["profile_id"] != bob["profile_id"]
    assert alice["identities"]["anonymous_id"] == ["shared-tablet"]
    conflicts = bob["history"]["conflicts"]
    assert len(conflicts) == 1 and "alice" in conflicts[0]["detail"]


def test_shared_email_between_two_users_is_a_recorded_conflict(p: Personify) -> None:
    send(p, "identify", userId="alice", traits={"email": "family@example.com"})
    send(p, "identify", userId="bob", anonymousId="a-bob")
    send(p, "identify", anonymousId="a-bob", traits={"email": "family@example.com"})
    assert (
        p.profile_by("user_id", "alice")["profile_id"]
        != p.profile_by("user_id", "bob")["profile_id"]
    )
    assert p.stores.profiles.count() == 2
    assert p.profile_by("user_id", "bob")["history"]["conflicts"]


@pytest.mark.parametrize("junk", ["undefined", "null", "0", "-1", "anonymous", "  "])
def test_junk_identifiers_never_link_profiles(p: Personify, junk: str) -> None:
    send(p, "track", userId=junk, anonymousId="a1", event="Viewed")
    send(p, "track", userId=junk, anonymousId="a2", event="Viewed")
    assert p.lookup("anonymous_id", "a1") != p.lookup("anonymous_id", "a2")


def test_a_message_with_only_junk_identifiers_is_refused(p: Personify) -> None:
    with pytest.raises(InvalidInput, match="placeholder"):
        p.send("track", {"userId": "undefined", "event": "Viewed"})


def test_alias_merges_the_previous_identity_into_the_new_user(p: Personify) -> None:
    send(p, "track", userId="old-id", event="Order Completed", properties={"revenue": 10})
    send(p, "track", userId="new-id", event="Order Completed", properties={"revenue": 5})
    send(p, "alias", userId="new-id", previousId="old-id")
    prof = p.profile_by("user_id", "old-id")
    assert prof["profile_id"] == p.lookup("user_id", "new-id")
    assert prof["computed"]["orders"] == 2
    assert prof["computed"]["revenue"] == 15
    assert prof["history"]["merges"][0]["reason"] == "alias"


def test_phone_numbers_are_matched_in_e164(p: Personify) -> None:
    send(p, "identify", userId="u1", traits={"phone": "(415) 555-2671"})
    assert p.profile_by("phone", "+1 415 555 2671")["profile_id"] == p.lookup("user_id", "u1")


def test_a_new_user_sharing_a_phone_with_another_user_gets_their_own_profile(
    p: Personify,
) -> None:
    send(p, "identify", userId="zoe", anonymousId="zoe-laptop", traits={"phone": "+15125550181"})
    send(p, "page", anonymousId="maya-phone", name="Home")
    send(p, "identify", userId="maya", anonymousId="maya-phone", traits={"phone": "+15125550181"})
    zoe, maya = p.profile_by("user_id", "zoe"), p.profile_by("user_id", "maya")
    assert zoe["profile_id"] != maya["profile_id"]
    assert zoe["identities"]["user_id"] == ["zoe"]
    # Maya's anonymous browsing still merged into her own profile.
    assert maya["identities"]["anonymous_id"] == ["maya-phone"]
    assert maya["computed"]["event_counts"]["page"] == 1
    assert maya["history"]["conflicts"] and "zoe" in maya["history"]["conflicts"][0]["detail"]
