"""Builders shared by unit tests: an engine on memory adapters with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from personify.clock import FixedClock
from personify.config import Settings
from personify.facade import Personify
from personify.platform import build

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def memory_engine(**overrides: Any) -> tuple[Personify, FixedClock]:
    clock = FixedClock(T0)
    settings = Settings(
        state_backend="memory",
        event_store_backend="memory",
        bus_backend="memory",
        write_keys="wk=web",
        admin_key="admin",
        **overrides,
    )
    return build(settings, clock), clock


def decide_key(p: Personify, name: str = "site") -> dict[str, str]:
    """Headers with a new API key of role ``decide`` (what a site's server sends to the
    decision and recommendation APIs; write keys may only collect)."""
    assert p.privacy is not None
    return {"Authorization": f"Bearer {p.privacy.keys.create('decide', name).token}"}
