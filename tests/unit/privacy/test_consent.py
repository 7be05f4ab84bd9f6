"""Consent: regional defaults, changes from events, the API and history, one policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine

from personify.api.app import create_app
from personify.errors import InvalidInput
from personify.facade import Personify
from personify.privacy.consent import PURPOSES, changes_in_message, parse_purposes
from personify.profiles.processor import Processor

ADMIN = {"Authorization": "Bearer admin"}


@pytest.fixture
def p() -> Iterator[Personify]:
    engine, _ = memory_engine()
    engine.identify(user_id="fr", traits={"country": "FR"}, timestamp="2024-05-01T10:00:00Z")
    engine.identify(user_id="us", traits={"country": "US"}, timestamp="2024-05-01T10:00:00Z")
    engine.drain()
    yield engine
    engine.close()


def test_defaults_follow_the_region(p: Personify) -> None:
    assert p.privacy is not None
    fr, us = p.profile_by("user_id", "fr"), p.profile_by("user_id", "us")
    assert fr["consent"] == dict.fromkeys(PURPOSES, False)  # EU: everything opt-in
    assert us["consent"]["personalization"] and not us["consent"]["marketing_email"]
    decision = p.privacy.may("personalization", fr)
    assert not decision.allowed and "region eu is opt-in" in decision.reason


def test_identify_consent_trait_and_consent_event_are_recorded_with_source_and_version(
    p: Personify,
) -> None:
    assert p.privacy is not None
    p.identify(
        user_id="fr",
        traits={"consent": {"personalization": True, "analytics": "yes", "version": "w2"}},
        timestamp="2024-05-01T11:00:00Z",
    )
    p.track(
        user_id="fr",
        event="Consent Updated",
        properties={"purposes": {"marketing_email": True, "bogus": True}, "version": "w3"},
        timestamp="2024-05-01T12:00:00Z",
    )
    p.drain()
    view = p.profile_by("user_id", "fr")
    assert view["consent"]["personalization"] and view["consent"]["marketing_email"]
    assert not view["consent"]["analytics"]  # "yes" is not a boolean: ignored
    history = p.privacy.consent_store.history([view["profile_id"]])
    assert [(h["purpose"], h["wording_version"], h["source"]) for h in history] == [
        ("personalization", "w2", "python"),
        ("marketing_email", "w3", "python"),
    ]
    assert p.privacy.may("personalization", view["profile_id"]).allowed


def test_a_later_refusal_wins_and_the_history_keeps_both(p: Personify) -> None:
    assert p.privacy is not None
    for at, value in (("2024-04-30T00:00:00Z", True), ("2024-05-01T00:00:00Z", False)):
        p.track(
            user_id="us", event="Consent Updated", properties={"profiling": value}, timestamp=at
        )
    p.drain()
    pid = p.lookup("user_id", "us")
    assert not p.privacy.may("profiling", pid).allowed
    assert [h["granted"] for h in p.privacy.consent_store.history([pid])] == [True, False]
    # a profile id the store does not hold gets the default region's default (opt-out)
    assert p.privacy.consent_check("profiling")([pid, "unknown"]) == {"unknown"}
    fr = p.lookup("user_id", "fr")
    assert p.privacy.consent_check("personalization")([pid, fr]) == {pid}


def test_consent_survives_a_merge(p: Personify) -> None:
    assert p.privacy is not None
    p.track(
        anonymous_id="visitor",
        event="Consent Updated",
        properties={"personalization": True},
        timestamp="2024-05-02T00:00:00Z",
    )
    p.drain()
    p.alias(user_id="fr", previous_id="visitor", timestamp="2024-05-02T01:00:00Z")
    p.drain()
    survivor = p.lookup("user_id", "fr")
    assert p.privacy.may("personalization", survivor).allowed
    assert p.privacy.consent_check("personalization")([survivor]) == {survivor}


def test_consent_api_sets_reads_and_validates(p: Personify) -> None:
    with TestClient(create_app(p)) as client:
        res = client.post(
            "/v1/consent",
            json={"userId": "fr", "purposes": {"marketing_push": True}, "version": "v9"},
            headers=ADMIN,
        )
        assert res.status_code == 200, res.text
        assert res.json()["consent"]["marketing_push"] is True
        got = client.get("/v1/consent", params={"userId": "fr"}, headers=ADMIN).json()
        assert got["region"] == "eu"
        assert [(h["purpose"], h["source"], h["wording_version"]) for h in got["history"]] == [
            ("marketing_push", "api", "v9")
        ]
        bad = client.post(
            "/v1/consent",
            json={"userId": "fr", "purposes": {"spam": True, "analytics": 1}},
            headers=ADMIN,
        )
        assert bad.status_code == 400
        assert {x["field"] for x in bad.json()["problems"]} == {
            "purposes.spam",
            "purposes.analytics",
        }
        two = client.post(
            "/v1/consent",
            json={"userId": "fr", "email": "a@b.co", "purposes": {"analytics": True}},
            headers=ADMIN,
        )
        assert two.status_code == 400
        unknown = client.post(
            "/v1/consent", json={"userId": "ghost", "purposes": {"analytics": True}}, headers=ADMIN
        )
        assert unknown.status_code == 404
        assert p.privacy is not None
        assert [r["action"] for r in p.privacy.audit.query(action="consent.*")] == ["consent.set"]


def test_parsing_rejects_unknown_purposes_and_events_ignore_them() -> None:
    with pytest.raises(InvalidInput):
        parse_purposes({}, "purposes")
    p_ = memory_engine()[0]
    assert p_.privacy is not None
    with pytest.raises(InvalidInput):
        p_.privacy.may("telepathy", "p1")
    message = {"type": "identify", "traits": {"consent": "yes"}, "timestamp": "t"}
    assert changes_in_message(message) == []


def test_consent_columns_of_a_customer_import_are_recorded(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from personify.cli.main import app
    from personify.config import Settings
    from personify.platform import build

    table = tmp_path / "customers.csv"
    table.write_text(
        "id,email,consent_marketing_email,consent_profiling,consent_version\n"
        "c1,c1@example.com,yes,0,2026-01\n"
        "c2,c2@example.com,maybe,,\n"
    )
    env = {"PERSONIFY_DATA_DIR": str(tmp_path / "d"), "PERSONIFY_WRITE_KEYS": "wk"}
    done = CliRunner().invoke(app, ["import", "customers", str(table)], env=env)
    assert done.exit_code == 0, done.output
    with build(Settings(data_dir=tmp_path / "d")) as p:
        p.drain()
        assert p.privacy is not None
        c1 = p.lookup("user_id", "c1")
        history = p.privacy.consent_store.history([c1])
        assert {(h["purpose"], h["granted"], h["wording_version"]) for h in history} == {
            ("marketing_email", True, "2026-01"),
            ("profiling", False, "2026-01"),
        }
        assert history[0]["source"].startswith("import")
        assert p.privacy.consent_store.history([p.lookup("user_id", "c2")]) == []


def test_events_whose_consent_refuses_analytics_are_kept_minimal() -> None:
    p, _ = memory_engine()
    refused = {"consent": {"categoryPreferences": {"analytics": False, "advertising": True}}}
    p.track(
        anonymous_id="visitor-9",
        event="Order Completed",
        properties={"revenue": 30, "order_id": "o1", "coupon": "SPRING", "email": "x@y.co"},
        context={**refused, "ip": "203.0.113.9", "userAgent": "Mozilla/5.0"},
    )
    p.track(anonymous_id="visitor-9", event="Order Completed", properties={"revenue": 5})
    p.drain()
    assert p.privacy is not None and p.privacy.minimized == 1
    [stored] = [
        r for r in p.stores.log.read(0, 10) if b"203.0.113.9" in r.payload or b"o1" in r.payload
    ]
    assert b"203.0.113.9" not in stored.payload and b"SPRING" not in stored.payload
    assert b"visitor-9" not in stored.payload and b'"revenue":30' in stored.payload
    # the minimized event lives on a pseudonymous profile; the consented one on the visitor's
    assert p.profile_by("anonymous_id", "visitor-9")["computed"]["revenue"] == 5.0


def _stored(p: Personify, message_id: str) -> tuple[bytes, dict[str, object]]:
    """The log payload and the event-store row of one message."""
    [record] = [r for r in p.stores.log.read(0, 1000) if r.message_id == message_id]
    [row] = [
        e
        for e in p.stores.events.timeline([p.lookup("user_id", "u1")], limit=1000)
        if e["message_id"] == message_id
    ]
    return record.payload, row


def test_a_person_who_refused_analytics_has_later_events_stored_minimal() -> None:
    p, _ = memory_engine()
    p.identify(
        user_id="u1",
        anonymous_id="visitor-1",
        traits={"country": "US", "consent": {"analytics": False}},
        timestamp="2024-05-01T10:00:00Z",
    )
    p.drain()
    p.track(
        messageId="m-order",
        user_id="u1",
        anonymous_id="visitor-1",
        event="Order Completed",
        properties={"revenue": 30, "order_id": "o1", "coupon": "SPRING"},
        context={"ip": "203.0.113.9", "userAgent": "Mozilla/5.0 (Windows NT 10.0)"},
        timestamp="2024-05-02T10:00:00Z",
    )
    p.drain()
    payload, row = _stored(p, "m-order")
    for raw in (payload, str(row["payload"]).encode()):
        assert b"203.0.113.9" not in raw and b"SPRING" not in raw and b"visitor-1" not in raw
        assert b'"revenue":30' in raw and b'"order_id":"o1"' in raw
    assert str(row["anonymous_id"]).startswith("pseudo:") and row["browser"] is None
    # the identify that carried the refusal and the order: both minimal
    assert isinstance(p.processor, Processor) and p.processor.minimized == 2
    # the profile itself still counts the order (profiles are not analytics events)
    assert p.profile_by("user_id", "u1")["computed"]["revenue"] == 30.0


def test_consent_given_in_the_same_batch_applies_to_the_events_after_it() -> None:
    p, _ = memory_engine()
    p.identify(user_id="u1", traits={"country": "US", "consent": {"analytics": False}})
    p.track(messageId="m-view", user_id="u1", event="Product Viewed", context={"ip": "203.0.113.9"})
    p.drain()  # one batch: the refusal is not stored yet when the view is
    payload, _ = _stored(p, "m-view")
    assert b"203.0.113.9" not in payload


def test_opt_in_regions_keep_events_minimal_until_analytics_is_granted() -> None:
    p, _ = memory_engine()
    p.identify(user_id="u1", traits={"country": "FR"}, timestamp="2024-05-01T10:00:00Z")
    p.track(
        messageId="m-before",
        user_id="u1",
        event="Product Viewed",
        context={"ip": "198.51.100.7"},
        timestamp="2024-05-01T10:01:00Z",
    )
    p.drain()
    p.track(
        user_id="u1",
        event="Consent Updated",
        properties={"purposes": {"analytics": True}, "version": "v3"},
        timestamp="2024-05-01T10:02:00Z",
    )
    p.track(
        messageId="m-after",
        user_id="u1",
        event="Product Viewed",
        context={"ip": "198.51.100.8"},
        timestamp="2024-05-01T10:03:00Z",
    )
    p.drain()
    assert b"198.51.100.7" not in _stored(p, "m-before")[0]
    assert b"198.51.100.8" in _stored(p, "m-after")[0]
    p.track(messageId="m-us", user_id="u2", event="Product Viewed", context={"ip": "192.0.2.1"})
    p.identify(user_id="u2", traits={"country": "US"})
    p.drain()
    [record] = [r for r in p.stores.log.read(0, 1000) if r.message_id == "m-us"]
    assert b"192.0.2.1" in record.payload  # opt-out region: kept in full


def test_choices_recorded_by_another_process_are_seen_by_the_worker_check(tmp_path: Path) -> None:
    # The worker keeps the ids with recorded choices in memory; a refusal written through
    # another connection (the API process) must still make it refuse.
    from personify.config import Settings
    from personify.privacy.consent import ConsentChange, ConsentPolicy, ConsentStore
    from personify.storage.memory import MemoryProfileStore

    path = tmp_path / "consent.sqlite"
    worker, api = ConsentStore(path), ConsentStore(path)
    conf = Settings(data_dir=tmp_path).privacy
    policy = ConsentPolicy(worker, conf.consent_defaults, conf.regions, MemoryProfileStore())
    docs = {"p1": {"profile_id": "p1", "traits": {}}, "p2": {"profile_id": "p2", "traits": {}}}
    assert policy.refusing("analytics", docs) == set()
    at = "2026-01-01T00:00:00Z"
    api.record([("p2", ConsentChange("analytics", False, "api", at, None))])
    assert worker.with_choices("analytics") == {"p2"}
    assert policy.refusing("analytics", docs) == {"p2"}
    api.record([("p2", ConsentChange("analytics", True, "api", "2026-01-02T00:00:00Z", None))])
    assert policy.refusing("analytics", docs) == set()
    worker.close()
    api.close()
