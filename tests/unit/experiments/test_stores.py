"""The embedded exposure log and sticky store: first write wins, and it survives a restart."""

from __future__ import annotations

from pathlib import Path

from personify.experiments.exposures import SqliteExposureLog
from personify.experiments.sticky import SqliteStickyStore


def test_an_exposure_is_recorded_once_even_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "exposures.sqlite"
    log = SqliteExposureLog(path)
    assert log.record("hero", "p1", "a", 10.0)
    assert not log.record("hero", "p1", "b", 20.0)
    assert log.record("other", "p1", "b", 20.0)
    log.close()
    reopened = SqliteExposureLog(path)
    assert not reopened.record("hero", "p1", "b", 30.0)
    rows = reopened.frame("hero").to_dict("records")
    assert rows == [{"experiment": "hero", "unit": "p1", "variant": "a", "exposed_at": 10.0}]
    reopened.close()


def test_sticky_assignments_survive_a_restart_and_another_writer_wins_ties(tmp_path: Path) -> None:
    path = tmp_path / "sticky.sqlite"
    first, second = SqliteStickyStore(path), SqliteStickyStore(path)
    first.remember([("anonymous_id", "a1")], "hero__0", 1)
    second.remember([("anonymous_id", "a1"), ("user_id", "u1")], "hero__0", 0)
    # the second process keeps what the first stored for a1 and adds u1 with its own choice
    assert second.lookup([("anonymous_id", "a1")], "hero__0") == 1
    first.close()
    second.close()
    again = SqliteStickyStore(path)
    assert again.lookup([("user_id", "u1")], "hero__0") == 0
    assert again.lookup([("user_id", "nobody")], "hero__0") is None
    again.close()
