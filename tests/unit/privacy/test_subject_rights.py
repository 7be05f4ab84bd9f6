"""Export and erasure jobs over HTTP (memory backends), suppression, regulations, audit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine

from personify.api.app import create_app
from personify.facade import Personify
from personify.privacy.suppression import message_identities

ADMIN = {"Authorization": "Bearer admin"}


@pytest.fixture
def engine() -> Iterator[Personify]:
    p, _ = memory_engine()
    p.page(anonymous_id="a-1", name="Home")
    p.alias(user_id="u-1", previous_id="a-1")
    p.identify(user_id="u-1", traits={"email": "Ann@Example.com", "phone": "+1 415 555 2671"})
    p.track(user_id="u-1", event="Order Completed", properties={"revenue": 5})
    p.track(user_id="u-2", event="Order Completed", properties={"revenue": 7})
    p.drain()
    yield p
    p.close()


@pytest.fixture
def client(engine: Personify) -> Iterator[TestClient]:
    with TestClient(create_app(engine, own_engine=False)) as c:
        yield c


def test_export_returns_everything_about_the_person(client: TestClient, engine: Personify) -> None:
    pid = engine.lookup("user_id", "u-1")
    engine.stores.scores.put("churn", 1, {pid: 0.4}, "2024-05-01")
    res = client.post("/v1/privacy/export", json={"phone": "(415) 555-2671"}, headers=ADMIN)
    assert res.status_code == 200, res.text
    job = res.json()
    assert job["status"] == "completed" and job["kind"] == "export"
    result = job["result"]
    assert result["profile"]["profile_id"] == pid
    assert result["identities"]["email"] == ["ann@example.com"]
    assert len(result["events"]) == 4
    assert result["scores"][pid]["churn"]["value"] == 0.4
    assert "consent" in result["profile"]
    assert result["trait_classes"] == {"email": "pii", "phone": "pii"}
    # the job can be read again; its stored summary holds counts, not data
    again = client.get(f"/v1/privacy/jobs/{job['job_id']}", headers=ADMIN).json()
    assert again["summary"] == {"found": True, "events": 4, "profiles": 1}
    assert "ann" not in again["subject"]


def test_erase_removes_the_person_and_keeps_others(client: TestClient, engine: Personify) -> None:
    pid = engine.lookup("user_id", "u-1")
    engine.stores.scores.put("churn", 1, {pid: 0.4}, "2024-05-01")
    res = client.post("/v1/privacy/erase", json={"anonymousId": "a-1"}, headers=ADMIN)
    assert res.status_code == 200, res.text
    summary = res.json()["summary"]
    assert summary["profiles"] == 1 and summary["events"] == 4 and summary["scores"] == 1
    assert summary["log_messages"] == 4
    assert engine.stores.profiles.get_many([pid]) == {}
    assert engine.stores.scores.get_many([pid]) == {}
    payloads = b"".join(r.payload for r in engine.stores.log.read(0, 100))
    assert b"u-1" not in payloads and b"Ann@Example.com" not in payloads
    assert b"u-2" in payloads
    assert engine.lookup("user_id", "u-2")
    # every identity they had is now suppressed, whichever one arrives
    for message in (
        {"userId": "u-1", "event": "Late"},
        {"anonymousId": "a-1", "event": "Late"},
        {"userId": "fresh", "event": "Late", "context": {"traits": {"email": "ANN@example.com"}}},
    ):
        assert client.post("/v1/track", json=message, headers=_write()).json()["accepted"] == 0
    assert engine.collector.suppressed == 3
    batch = {"batch": [{"type": "track", "userId": "u-1", "event": "x"}, _keep()]}
    assert client.post("/v1/batch", json=batch, headers=_write()).json()["accepted"] == 1
    audit = client.get("/v1/audit", params={"action": "privacy.*"}, headers=ADMIN).json()
    assert [r["action"] for r in audit["records"]] == ["privacy.erase"]
    assert audit["records"][0]["actor"] == "admin-key"


def test_erasing_an_unknown_person_still_suppresses_them(
    client: TestClient, engine: Personify
) -> None:
    res = client.post("/v1/privacy/erase", json={"email": "nobody@example.com"}, headers=ADMIN)
    assert res.json()["summary"]["profiles"] == 0
    sent = {"userId": "n", "traits": {"email": "nobody@example.com"}}
    assert client.post("/v1/identify", json=sent, headers=_write()).json()["accepted"] == 0


def test_regulations_batch_form(client: TestClient, engine: Personify) -> None:
    body = {
        "regulationType": "SUPPRESS_WITH_DELETE",
        "subjectType": "USER_ID",
        "subjectIds": ["u-1", "u-2"],
    }
    res = client.post("/v1/regulations", json=body, headers=ADMIN)
    assert res.status_code == 200, res.text
    assert [j["status"] for j in res.json()["jobs"]] == ["completed", "completed"]
    assert engine.stores.profiles.count() == 0
    only = {"regulationType": "SUPPRESS_ONLY", "subjectType": "EMAIL", "subjectIds": ["x@y.co"]}
    assert client.post("/v1/regulations", json=only, headers=ADMIN).status_code == 200
    bad = client.post(
        "/v1/regulations",
        json={"regulationType": "NUKE", "subjectType": "PET", "subjectIds": []},
        headers=ADMIN,
    )
    assert bad.status_code == 400
    assert {p["field"] for p in bad.json()["problems"]} == {
        "regulationType",
        "subjectType",
        "subjectIds",
    }


@pytest.mark.parametrize(
    "body",
    [{}, {"userId": "a", "email": "b@c.co"}, {"userId": ""}, {"userId": 5}, {"email": "nope"}],
)
def test_bad_subjects_are_explained(client: TestClient, body: dict[str, object]) -> None:
    for path in ("/v1/privacy/export", "/v1/privacy/erase"):
        res = client.post(path, json=body, headers=ADMIN)
        assert res.status_code == 400, (path, body, res.text)
        assert res.json()["hint"] and res.json()["problems"]


def test_unknown_job_is_404(client: TestClient) -> None:
    res = client.get("/v1/privacy/jobs/erase_nope", headers=ADMIN)
    assert res.status_code == 404 and "job_id" in res.json()["hint"]


def test_message_identities_cover_alias_and_context_traits() -> None:
    found = message_identities(
        {"previousId": " p ", "context": {"traits": {"email": "A@B.co", "phone": "bad"}}}, "US"
    )
    assert found == [("user_id", "p"), ("anonymous_id", "p"), ("email", "a@b.co")]


def _write() -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(b"wk:").decode()}


def _keep() -> dict[str, str]:
    return {"type": "track", "userId": "u-2", "event": "kept"}


def test_data_minimization_keeps_only_allowed_traits() -> None:
    p, _ = memory_engine(privacy={"trait_allowlist": ["email", "plan"]})
    p.identify(
        user_id="m",
        traits={"email": "m@example.com", "plan": "pro", "ssn": "123", "consent": {}},
        context={"traits": {"favourite_colour": "red"}},
    )
    p.drain()
    traits = p.profile_by("user_id", "m")["traits"]
    assert set(traits) == {"email", "plan", "consent"}
    assert p.privacy is not None and p.privacy.dropped_traits == 2
    stored = b"".join(r.payload for r in p.stores.log.read(0, 10))
    assert b"ssn" not in stored and b"favourite_colour" not in stored
