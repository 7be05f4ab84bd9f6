"""Bad input to the privacy and key endpoints is refused before anything is done."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine

from personify.api.app import create_app
from personify.errors import InvalidInput
from personify.facade import Personify
from personify.privacy.keys import ApiKeyStore

ADMIN = {"Authorization": "Bearer admin"}


@pytest.fixture
def engine() -> Iterator[Personify]:
    p, _ = memory_engine()
    p.identify(user_id="user_0000003", traits={"email": "ann@example.com"})
    p.identify(user_id="u-phone", traits={"phone": "+1 415 555 0100"})
    p.drain()
    yield p
    p.close()


@pytest.fixture
def client(engine: Personify) -> Iterator[TestClient]:
    with TestClient(create_app(engine, own_engine=False)) as c:
        yield c


@pytest.mark.parametrize(
    ("subject_type", "ids", "bad_index"),
    [
        ("USER_ID", ["user_0000003", "x" * 1100], 1),
        ("USER_ID", ["user_0000003", "   "], 1),
        ("EMAIL", ["ann@example.com", "not-an-email"], 1),
    ],
)
@pytest.mark.parametrize("regulation", ["DELETE_ONLY", "SUPPRESS_WITH_DELETE", "SUPPRESS_ONLY"])
def test_regulation_with_one_invalid_id_erases_nobody(
    client: TestClient,
    engine: Personify,
    regulation: str,
    subject_type: str,
    ids: list[str],
    bad_index: int,
) -> None:
    before = engine.stores.profiles.count()
    body = {"regulationType": regulation, "subjectType": subject_type, "subjectIds": ids}
    res = client.post("/v1/regulations", json=body, headers=ADMIN)
    assert res.status_code == 400, res.text
    fields = {p["field"] for p in res.json()["problems"]}
    assert f"subjectIds[{bad_index}]" in fields or "subjectIds" in fields
    assert engine.stores.profiles.count() == before
    # nobody was suppressed either: the first person's events are still accepted
    assert engine.privacy is not None
    assert not engine.privacy.suppression.contains("user_id", "user_0000003")


def test_regulation_refuses_unknown_fields(client: TestClient, engine: Personify) -> None:
    body = {
        "regulationType": "DELETE_ONLY",
        "subjectType": "USER_ID",
        "subjectIds": ["user_0000003"],
        "subjectIDs": ["x"],
    }
    res = client.post("/v1/regulations", json=body, headers=ADMIN)
    assert res.status_code == 400 and "subjectIDs" in res.json()["message"]
    assert engine.stores.profiles.count() == 2


def test_key_create_refuses_unknown_fields_and_control_characters(client: TestClient) -> None:
    res = client.post(
        "/v1/keys",
        json={"role": "decide", "name": "site", "expires": "tomorrow"},
        headers=ADMIN,
    )
    assert res.status_code == 400, res.text
    assert "expires" in res.json()["message"]
    assert [p["field"] for p in res.json()["problems"]] == ["expires"]
    res = client.post(
        "/v1/keys", json={"role": "decide", "name": "a\u0000\u001b[31mred"}, headers=ADMIN
    )
    assert res.status_code == 400 and res.json()["problems"][0]["field"] == "name"
    assert client.get("/v1/keys", headers=ADMIN).json()["keys"] == []


@pytest.mark.parametrize("name", ["a\x00b", "\x1b[31mred", "tab\there", "line\nbreak", "rtl\u202e"])
def test_key_store_refuses_control_characters_in_names(name: str) -> None:
    store = ApiKeyStore(None)
    with pytest.raises(InvalidInput) as bad:
        store.create("analyst", name)
    assert bad.value.problems[0].field == "name"
    assert store.create("analyst", "Zoë's [notebook]").key.name == "Zoë's [notebook]"


def test_consent_refuses_unknown_fields_and_long_versions(
    client: TestClient, engine: Personify
) -> None:
    typo = {"userId": "user_0000003", "purposes": {"marketing_email": True}, "versoin": "v9"}
    res = client.post("/v1/consent", json=typo, headers=ADMIN)
    assert res.status_code == 400 and "versoin" in res.json()["message"]
    long = {"userId": "user_0000003", "purposes": {"marketing_email": True}, "version": "v" * 201}
    res = client.post("/v1/consent", json=long, headers=ADMIN)
    assert res.status_code == 400 and res.json()["problems"][0]["field"] == "version"
    got = client.get("/v1/consent", params={"userId": "user_0000003"}, headers=ADMIN).json()
    assert got["history"] == []
    ok = {**long, "version": "v" * 200}
    assert client.post("/v1/consent", json=ok, headers=ADMIN).status_code == 200


@pytest.mark.parametrize("path", ["/v1/privacy/export", "/v1/privacy/erase"])
def test_export_and_erase_refuse_unknown_fields(
    client: TestClient, engine: Personify, path: str
) -> None:
    res = client.post(path, json={"userId": "user_0000003", "format": "zip"}, headers=ADMIN)
    assert res.status_code == 400 and "format" in res.json()["message"]
    assert engine.stores.profiles.count() == 2
    assert engine.privacy is not None
    assert engine.privacy.audit.query(action="privacy.*") == []


def test_consent_can_be_read_by_phone(client: TestClient) -> None:
    res = client.get("/v1/consent", params={"phone": "+14155550100"}, headers=ADMIN)
    assert res.status_code == 200, res.text
    assert "consent" in res.json()


def test_audit_after_is_bounded(client: TestClient) -> None:
    res = client.get("/v1/audit", params={"after": "99999999999999999999"}, headers=ADMIN)
    assert res.status_code in (400, 422), res.text
