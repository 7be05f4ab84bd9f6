"""PII sealed at rest in the profile store: lookups still work, raw files show nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.e2e.test_privacy_erasure import search

from personify.config import Settings
from personify.errors import Unavailable
from personify.platform import build
from personify.privacy.encrypted_store import EncryptedProfileStore
from personify.privacy.pii import (
    FieldCipher,
    Keyring,
    classify,
    load_keyring,
    retire_keys,
    rotate_keyring,
)

EMAIL, PHONE, NAME = "Nora.Vex@Example.com", "+1 (415) 555-0199", "Nora Vexley"
PLAIN = (b"nora.vex@example.com", b"4155550199", b"Nora Vexley", b"nora.vex")


def _settings(data: Path, **privacy: object) -> Settings:
    return Settings(data_dir=data, write_keys="wk", privacy={"encrypt_pii": True, **privacy})


def _ingest(settings: Settings) -> None:
    with build(settings) as p:
        p.page(anonymous_id="anon-n1", name="Home")
        p.identify(anonymous_id="anon-n2", traits={"email": EMAIL, "name": NAME})
        p.drain()
        # one message naming both visitors' keys: their two profiles merge
        p.identify(
            user_id="u-nora",
            anonymous_id="anon-n1",
            traits={"email": EMAIL, "phone": PHONE, "name": NAME, "plan": "pro"},
        )
        p.track(user_id="u-nora", event="Order Completed", properties={"email": EMAIL})
        p.ingest([{"type": "identify", "traits": {"email": EMAIL, "phone": PHONE}}], "crm")
        p.drain()
        assert p.stores.profiles.count() == 1
        assert p.stores.quarantine.count() == 1  # no userId: quarantined, with the PII


def _state_bytes(data: Path) -> bytes:
    return b"".join(
        f.read_bytes().lower() for f in data.iterdir() if f.name.startswith("state.sqlite")
    )


def _all_bytes(data: Path) -> bytes:
    return b"".join(f.read_bytes().lower() for f in sorted(data.rglob("*")) if f.is_file())


def test_reads_are_plain_but_no_file_of_the_data_directory_holds_pii(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "d")
    _ingest(settings)
    raw = _all_bytes(tmp_path / "d")
    assert raw and not [s for s in PLAIN if s.lower() in raw]
    # and no table column of any SQLite or DuckDB file, read through SQL, holds them
    for needle in PLAIN:
        assert search(tmp_path / "d", needle.decode()) == [], needle
    found = search(tmp_path / "d", "u-nora")  # the search does find what is stored
    assert any(h.startswith("events.duckdb:") for h in found)
    assert any(h.startswith("log.sqlite:") for h in found)
    with build(settings) as p:
        pid = p.lookup("email", EMAIL)
        assert p.lookup("phone", "415 555 0199") == pid == p.lookup("anonymous_id", "anon-n2")
        view = p.profile(pid)
        assert view["traits"]["email"]["value"] == EMAIL
        assert view["traits"]["name"]["value"] == NAME
        assert view["identities"]["email"] == ["nora.vex@example.com"]
        timeline = p.timeline(pid)
        assert {e["properties"].get("email") for e in timeline} >= {EMAIL}
        assert {e["traits"].get("phone") for e in timeline} >= {PHONE}
        [item] = p.quarantined()
        assert item["payload"]["traits"] == {"email": EMAIL, "phone": PHONE}


def test_without_the_keyring_nothing_can_be_read(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "d")
    _ingest(settings)
    (tmp_path / "d" / "pii.keys").rename(tmp_path / "elsewhere.keys")  # a copy without the key
    with build(settings) as p:
        pid = p.lookup("user_id", "u-nora")
        with pytest.raises(Unavailable, match="keyring lacks"):
            p.profile(pid)


def test_rotation_reseals_every_value_and_old_keys_can_be_retired(tmp_path: Path) -> None:
    data = tmp_path / "d"
    settings = _settings(data)
    _ingest(settings)
    old = load_keyring(None, data).current
    new = rotate_keyring(data).current
    with build(settings) as p:
        store = p.stores.profiles
        assert isinstance(store, EncryptedProfileStore)
        assert store.reseal() == 2  # the live profile and the one merged into it
        assert store.reseal() == 0
        assert p.profile_by("user_id", "u-nora")["merged_from"]
    assert f"enc:1:{old}:".encode() not in _state_bytes(data)
    retire_keys(data)
    with build(settings) as p:
        assert p.profile_by("email", EMAIL)["traits"]["phone"]["value"] == PHONE
    assert load_keyring(None, data).current == new


def test_sealed_values_are_bound_to_their_field_and_key() -> None:
    cipher = FieldCipher(Keyring({"a": bytes(32)}, "a"))
    sealed = cipher.seal(b"x", "email")
    with pytest.raises(Unavailable, match="failed authentication"):
        cipher.open(sealed, "phone")
    with pytest.raises(Unavailable, match="keyring lacks"):
        FieldCipher(Keyring({"b": bytes(32)}, "b")).open(sealed, "email")
    assert cipher.seal(b"x", "email") != sealed  # random nonces
    with pytest.raises(Unavailable, match="64 hex"):
        load_keyring("abcd", None)


def test_classification() -> None:
    assert classify("email", ["email"], ["health"]) == "pii"
    assert classify("health", ["email"], ["health"]) == "sensitive"
    assert classify("plan", ["email"], ["health"]) == "ordinary"
