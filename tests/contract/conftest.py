"""Factories for every adapter of every port; each contract test runs against all of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from personify.privacy.encrypted_store import EncryptedProfileStore
from personify.privacy.pii import FieldCipher, Keyring
from personify.storage import memory
from personify.storage.duckdb import DuckDbEventStore
from personify.storage.sqlite import SqliteEventLog, SqliteQuarantineStore, SqlProfileStore
from personify.storage.sqlite.profile_writer import BackgroundProfileStore
from personify.storage.sqlite.profiles import sqlite_engine

Factory = Callable[[Path], Any]

LOGS: dict[str, Factory] = {
    "memory": lambda _: memory.MemoryEventLog(),
    "sqlite": lambda d: SqliteEventLog(d / "log.sqlite"),
}
PROFILES: dict[str, Factory] = {
    "memory": lambda _: memory.MemoryProfileStore(),
    "sqlite": lambda d: SqlProfileStore(sqlite_engine(f"sqlite:///{d / 'state.sqlite'}")),
    # writes from a child process (the processing worker's profile store)
    "sqlite-background": lambda d: BackgroundProfileStore(
        SqlProfileStore(sqlite_engine(f"sqlite:///{d / 'state.sqlite'}")),
        f"sqlite:///{d / 'state.sqlite'}",
    ),
    # the privacy wrapper that seals PII (privacy.encrypt_pii) must behave the same
    "sqlite-encrypted": lambda d: EncryptedProfileStore(
        SqlProfileStore(sqlite_engine(f"sqlite:///{d / 'state.sqlite'}")),
        FieldCipher(Keyring({"k": bytes(range(32))}, "k")),
        b"contract-secret",
        ["email", "name"],
    ),
}
EVENTS: dict[str, Factory] = {
    "memory": lambda _: memory.MemoryEventStore(),
    "duckdb": lambda d: DuckDbEventStore(d / "events.duckdb"),
}
QUARANTINES: dict[str, Factory] = {
    "memory": lambda _: memory.MemoryQuarantineStore(),
    "sqlite": lambda d: SqliteQuarantineStore(d / "quarantine.sqlite"),
}


def _fixture(factories: dict[str, Factory]) -> Any:
    @pytest.fixture(params=sorted(factories))
    def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
        s = factories[request.param](tmp_path)
        yield s
        s.close()

    return store


event_log = _fixture(LOGS)
profile_store = _fixture(PROFILES)
event_store = _fixture(EVENTS)
quarantine_store = _fixture(QUARANTINES)


@pytest.fixture(params=sorted(set(LOGS) & {"sqlite"}))
def durable_log_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Any]:
    return lambda: LOGS[request.param](tmp_path)
