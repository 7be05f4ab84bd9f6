"""A change written by another process reaches a running engine within its poll interval."""

from __future__ import annotations

import time
from pathlib import Path

from tests.unit.decide.conftest import BASE, NOW, view

from personify.clock import FixedClock
from personify.decide.engine import DecisionEngine
from personify.definitions import open_sqlite
from personify.workspace import apply


def test_a_change_from_another_handle_is_live_within_a_second(tmp_path: Path) -> None:
    (tmp_path / "ws.yaml").write_text(BASE)
    writer = open_sqlite(tmp_path / "data")  # e.g. `personify apply` in another process
    apply(tmp_path / "ws.yaml", writer, actor="ops")
    serving = open_sqlite(tmp_path / "data")
    engine = DecisionEngine(serving, None, FixedClock(NOW), poll_interval=0.2)
    assert engine.decide(view(), {}, ["hero"])[0].content == "welcome"
    writer.put("rule_set", "hero", {"rules": [{"id": "all", "show": "bags"}]}, actor="ops")
    started = time.monotonic()
    while engine.decide(view(), {}, ["hero"])[0].content != "bags":
        assert time.monotonic() - started < 1.0, "the change did not arrive within a second"
        time.sleep(0.02)
    writer.close()
    serving.close()
