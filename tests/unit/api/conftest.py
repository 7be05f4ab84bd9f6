"""An in-memory engine and a test client of its app, for the API tests that need both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.unit.helpers import memory_engine

from personify.api.app import create_app
from personify.facade import Personify


@pytest.fixture
def engine() -> Personify:
    return memory_engine()[0]


@pytest.fixture
def client(engine: Personify) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c
