"""Builders for decision tests: a store loaded from workspace YAML, an engine on a fixed clock."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from personify.clock import FixedClock
from personify.decide.engine import DecisionEngine
from personify.decide.log import DecisionLog
from personify.definitions import DefinitionStore, MemoryDefinitionStore
from personify.workspace import apply

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

BASE = """
content:
  welcome:
    variants:
      web: {headline: "Welcome {{ traits.first_name | default('there') }}"}
      email: {subject: "Welcome"}
  cart:
    variants: {web: {headline: "Your cart, {{ traits.first_name }}"}}
    caps: {per_day: 2}
  winback:
    type: offer
    variants: {web: {headline: "We miss you"}}
  shoes:
    attributes: {slug: shoes}
    variants: {web: {headline: Shoes}}
  bags:
    attributes: {slug: bags}
    variants: {web: {headline: Bags}}
placements:
  hero:
    channel: web
    candidates: [cart, winback, shoes, bags, welcome]
    default: welcome
"""


def load(store: DefinitionStore, text: str, tmp_path: Path, name: str = "ws.yaml") -> None:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    apply(path, store, actor="test")


def view(
    profile_id: str = "p1",
    *,
    traits: dict[str, Any] | None = None,
    computed: dict[str, Any] | None = None,
    scores: dict[str, Any] | None = None,
    segments: list[str] | None = None,
) -> dict[str, Any]:
    """A profile view as ``Personify.profile`` returns it (traits with provenance)."""
    return {
        "profile_id": profile_id,
        "traits": {k: {"value": v, "source": "web", "at": "x"} for k, v in (traits or {}).items()},
        "computed": {"orders": 0, "event_counts": {}, **(computed or {})},
        "scores": scores or {},
        "segments": segments or [],
    }


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def store() -> MemoryDefinitionStore:
    return MemoryDefinitionStore()


@pytest.fixture
def log() -> Iterator[DecisionLog]:
    decisions = DecisionLog(None)
    yield decisions
    decisions.close()


def engine_for(
    store: MemoryDefinitionStore, clock: FixedClock, log: DecisionLog | None = None
) -> DecisionEngine:
    return DecisionEngine(store, log, clock, poll_interval=0.0)
