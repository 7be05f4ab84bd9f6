"""A scoring run reads the profiles' events long before it writes their scores: a profile
erased in between must not get a score written back after the erasure deleted its scores,
and a profile whose document processing has not stored yet must keep its score."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.unit.models.synthetic import events

import personify.models.serving as serving
from personify.clock import FixedClock
from personify.config import Settings
from personify.facade import Personify
from personify.models.schedule import retrain_due
from personify.models.service import LiveSource, ModelService
from personify.models.training import train_events
from personify.platform import build
from personify.privacy.subject import erase
from personify.profiles.records import new_profile
from personify.storage.ports import ProfileChanges
from personify.storage.sqlite import SqlProfileStore
from personify.storage.sqlite.profiles import sqlite_engine

NOW = datetime(2024, 11, 1, tzinfo=UTC)
Run = Callable[[ModelService, Any], int]  # scores every profile; how many it reports


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, bus_backend="memory", write_keys="wk=web", admin_key="admin")


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[Personify, Any]]:
    """120 customers' events processed into profiles, a churn model serving, and a connection
    to the event store."""
    p = build(_settings(tmp_path), FixedClock(NOW))
    reader = getattr(p.stores.events, "reader", None)
    assert reader is not None
    con = reader()
    try:
        for r in events(customers=120, days=300, seed=11).to_dict("records"):
            user, stamp = f"user-{r['profile_id']}", r["timestamp"].isoformat()
            if r["type"] == "page":
                p.page(user_id=user, name="Home", timestamp=stamp)
            else:
                props = json.loads(r["payload"])["properties"]
                p.track(user_id=user, event=r["event"], properties=props, timestamp=stamp)
        p.drain()
        model = train_events(con, "events", cutoff="2024-08-01")
        ModelService(p.settings).register("churn", model, promote=True)
        yield p, con
    finally:
        con.close()
        p.close()


def _score(service: ModelService, con: Any) -> int:
    return int(service.score("churn", as_of=NOW.isoformat(), con=con)["scored"])


def _retrain(service: ModelService, con: Any) -> int:
    (entry,) = retrain_due(service, con, force=True)  # the worker's scheduled run
    assert entry["retrained"]
    return int(entry["scored"])


@pytest.mark.parametrize("run", [_score, _retrain], ids=["models-score", "scheduled-retrain"])
def test_a_profile_erased_while_scoring_runs_keeps_no_score(
    platform: tuple[Personify, Any], run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, con = platform
    erased, kept = p.lookup("user_id", "user-p0001"), p.lookup("user_id", "user-p0002")
    build_features = serving.build_features
    summaries: list[dict[str, int]] = []

    def erase_meanwhile(*args: Any, **kwargs: Any) -> pd.DataFrame:
        frame = build_features(*args, **kwargs)  # the features are read, then the erasure runs
        summaries.append(erase(p, "user_id", "user-p0001"))
        return frame

    monkeypatch.setattr(serving, "build_features", erase_meanwhile)
    scored = run(ModelService(p.settings), con)

    assert summaries and summaries[0]["profiles"] == 1
    assert p.stores.scores.get_many([erased]) == {}
    assert "churn" in p.stores.scores.get_many([kept])[kept]
    assert scored == p.stores.scores.count("churn") == 119


def test_a_profile_not_yet_stored_when_scoring_begins_keeps_its_score(
    platform: tuple[Personify, Any],
) -> None:
    """Under ``serve`` events are stored before the profile writer stores their documents:
    a run that sees a new profile's events without its document scores it all the same."""
    p, con = platform
    pending = p.lookup("user_id", "user-p0003")
    p.stores.profiles.delete_profiles([pending])  # as if still with the profile writer

    assert _score(ModelService(p.settings), con) == 120
    assert "churn" in p.stores.scores.get_many([pending])[pending]
    assert p.stores.scores.count("churn") == 120


def test_erased_reads_existence_of_more_ids_than_sqlite_takes_parameters(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = SqlProfileStore(sqlite_engine(f"sqlite:///{path}"))
    ids = [f"p{i:05d}" for i in range(2_500)]
    store.apply(ProfileChanges(profiles={i: new_profile(i, "2024-01-01T00:00:00Z") for i in ids}))
    store.delete_profiles(ids[::500])
    store.close()
    live = LiveSource("events", frozenset(ids), path)

    assert live.erased([*ids, "never-stored"]) == set(ids[::500])
    assert LiveSource("events").erased(ids) == set()  # no profile store: nothing to drop


@pytest.mark.timeout(30)
def test_a_profile_merged_into_an_erased_one_does_not_stall_scoring(tmp_path: Path) -> None:
    """An erasure racing a merge can leave a merged-away profile pointing at an erased
    survivor (see ``personify.privacy.subject``); scoring reads past it."""
    settings = _settings(tmp_path)
    p = build(settings, FixedClock(NOW))
    reader = getattr(p.stores.events, "reader", None)
    assert reader is not None
    con = reader()
    try:
        p.page(anonymous_id="anon-1", name="Home", timestamp="2024-10-01T10:00:00Z")
        p.identify(user_id="u1", timestamp="2024-10-02T10:00:00Z")
        p.identify(user_id="u1", anonymous_id="anon-1", timestamp="2024-10-03T10:00:00Z")
        p.drain()
        survivor = p.lookup("user_id", "u1")
        p.stores.profiles.delete_profiles([survivor])
        ModelService(settings).live_events(con)
    finally:
        con.close()
        p.close()
