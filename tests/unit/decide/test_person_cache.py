"""The decision path keeps people in memory, and never decides on one from before a change.

A decider on the embedded SQLite files caches each person's view and consent; any commit to
the files a view is read from (profiles, memberships, scores, consent), made here, through
another connection or by another process, must show in the very next decision.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.unit.decide.conftest import BASE, load

from personify.clock import FixedClock
from personify.config import Settings
from personify.decide.service import Decider
from personify.decide.views import Person, PersonCache, watched_files
from personify.facade import Personify
from personify.platform import build
from personify.privacy.consent import ConsentChange, ConsentStore
from personify.segments.store import SegmentStore, SegmentWrite
from personify.storage.sqlite.scores import SqlScoreStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULES = """
rules:
  hero:
    - {id: pro, when: {traits.plan: pro}, show: winback}
    - {id: churn, when: {scores.churn: {$gt: 0.7}}, show: cart}
    - {id: vip, when: {segments: {$elemMatch: {$eq: vip}}}, show: shoes}
    - {id: lapsing, when: {computed.lifecycle_stage: lapsing}, show: bags}
"""


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def engine(tmp_path: Path, clock: FixedClock) -> Iterator[Personify]:
    settings = Settings(data_dir=tmp_path / "data", write_keys="wk=web", admin_key="admin")
    p = build(settings, clock)
    yield p
    p.close()


@pytest.fixture
def decider(engine: Personify, tmp_path: Path) -> Iterator[Decider]:
    d = Decider(engine, poll_interval=0.0)
    load(d.store, BASE + RULES, tmp_path)
    yield d
    d.close()


def shown(decider: Decider, user: str = "u1") -> str | None:
    return decider.decide(user_id=user, placements=["hero"])[0].content


def profile_id(engine: Personify, user: str = "u1") -> str:
    return engine.lookup("user_id", user)


def test_people_are_cached_between_decisions(engine: Personify, decider: Decider) -> None:
    engine.identify(user_id="u1", traits={"plan": "free"})
    engine.drain()
    assert shown(decider) == "welcome"
    assert len(decider.people) == 1
    assert shown(decider) == "welcome"
    assert len(decider.people) == 1


def test_a_profile_change_is_decided_on_at_once(engine: Personify, decider: Decider) -> None:
    engine.identify(user_id="u1", traits={"plan": "free"})
    engine.drain()
    assert shown(decider) == "welcome"
    engine.identify(user_id="u1", traits={"plan": "pro"})
    engine.drain()
    assert shown(decider) == "winback"


def test_scores_written_by_another_process_are_seen(
    engine: Personify, decider: Decider, tmp_path: Path
) -> None:
    engine.identify(user_id="u1", traits={"plan": "free"})
    engine.drain()
    assert shown(decider) == "welcome"
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from personify.storage.sqlite.scores import SqlScoreStore
        store = SqlScoreStore.open(Path({str(tmp_path / "data" / "scores.sqlite")!r}))
        store.put("churn", 1, {{{profile_id(engine)!r}: 0.9}}, "2026-03-01T12:00:00Z")
        store.close()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert shown(decider) == "cart"


def test_scores_lowered_through_another_connection_are_seen(
    engine: Personify, decider: Decider, tmp_path: Path
) -> None:
    engine.identify(user_id="u1", traits={"plan": "free"})
    engine.drain()
    batch = SqlScoreStore.open(tmp_path / "data" / "scores.sqlite")  # batch scoring
    batch.put("churn", 1, {profile_id(engine): 0.9}, "2026-03-01T12:00:00Z")
    assert shown(decider) == "cart"
    batch.put("churn", 2, {profile_id(engine): 0.1}, "2026-03-01T13:00:00Z")
    assert shown(decider) == "welcome"
    batch.close()


def test_a_membership_written_by_the_segment_engine_is_seen(
    engine: Personify, decider: Decider, tmp_path: Path
) -> None:
    engine.identify(user_id="u1", traits={"plan": "free"})
    engine.drain()
    assert shown(decider) == "welcome"
    worker = SegmentStore(tmp_path / "data" / "segments.sqlite")  # as in the worker process
    worker.write(SegmentWrite(entered=[("vip", profile_id(engine), "2026-03-01T12:00:00Z")]))
    assert shown(decider) == "shoes"
    worker.close()


def test_consent_withdrawn_elsewhere_stops_personalization_at_once(
    engine: Personify, decider: Decider, tmp_path: Path
) -> None:
    engine.identify(user_id="u1", traits={"plan": "pro"})
    engine.drain()
    assert shown(decider) == "winback"
    other = ConsentStore(tmp_path / "data" / "consent.sqlite")  # e.g. the CLI
    change = ConsentChange("personalization", False, "cli", "2026-03-01T12:00:00+00:00", None)
    other.record([(profile_id(engine), change)])
    [decision] = decider.decide(user_id="u1", placements=["hero"])
    assert (decision.content, decision.reasons[0].type) == ("welcome", "consent")
    other.close()


def test_a_deleted_profile_is_an_unknown_visitor_at_once(
    engine: Personify, decider: Decider
) -> None:
    engine.identify(user_id="u1", traits={"plan": "pro"})
    engine.drain()
    assert shown(decider) == "winback"
    engine.stores.profiles.delete_profiles([profile_id(engine)])
    [decision] = decider.decide(user_id="u1", placements=["hero"])
    assert (decision.content, decision.reasons[0].type) == ("welcome", "visitor")


def test_the_lifecycle_stage_of_a_cached_person_follows_the_clock(
    engine: Personify, decider: Decider, clock: FixedClock
) -> None:
    engine.identify(user_id="u1", traits={"plan": "free"})
    engine.track(user_id="u1", event="Order Completed", properties={"revenue": 10})
    engine.drain()
    assert shown(decider) == "welcome"
    clock.advance(days=engine.settings.profiles.lapsing_after_days + 1)
    assert shown(decider) == "bags"  # nothing was written: only time moved
    assert len(decider.people) == 1


def test_a_person_read_just_before_a_stage_boundary_moves_on_when_it_passes(
    engine: Personify, decider: Decider, clock: FixedClock
) -> None:
    engine.identify(user_id="u1", traits={"plan": "free"})
    engine.track(user_id="u1", event="Order Completed", properties={"revenue": 10})
    engine.drain()
    clock.advance(days=engine.settings.profiles.lapsing_after_days, seconds=-30)
    engine.identify(user_id="u1", traits={"plan": "basic"})  # read again, 30 s before lapsing
    engine.drain()
    assert shown(decider) == "welcome"
    clock.advance(seconds=31)
    assert shown(decider) == "bags"


def test_the_memory_backend_is_not_cached(tmp_path: Path) -> None:
    settings = Settings(state_backend="memory", event_store_backend="memory", bus_backend="memory")
    assert watched_files(settings) is None
    p = build(settings, FixedClock(T0))
    d = Decider(p, poll_interval=0.0)
    load(d.store, BASE + RULES, tmp_path)
    p.identify(user_id="u1", traits={"plan": "free"})
    p.drain()
    assert (shown(d), d.people.caching, len(d.people)) == ("welcome", False, 0)
    p.identify(user_id="u1", traits={"plan": "pro"})
    p.drain()
    assert shown(d) == "winback"
    d.close()
    p.close()


def test_the_watched_files_are_the_ones_the_stores_open(engine: Personify) -> None:
    paths = watched_files(engine.settings)
    assert paths is not None
    assert all(path.is_file() for path in paths)


# -- PersonCache on its own -------------------------------------------------------------------
def counting_cache(version: list[int], max_size: int = 10) -> tuple[PersonCache, list[str]]:
    loads: list[str] = []

    def load(pid: str) -> Person:
        loads.append(pid)
        return Person({"profile_id": pid, "n": len(loads)}, None)

    return PersonCache(load, lambda: (version[0],), max_size=max_size), loads


def test_a_new_token_drops_every_cached_person() -> None:
    version = [1]
    cache, loads = counting_cache(version)
    cache.get("a")
    cache.get("b")
    cache.get("a")
    assert loads == ["a", "b"]
    version[0] = 2
    cache.get("b")
    assert (loads, len(cache)) == (["a", "b", "b"], 1)


def test_a_commit_racing_a_read_makes_the_next_call_read_again() -> None:
    version = [1]
    loads: list[str] = []

    def load(pid: str) -> Person:
        loads.append(pid)
        version[0] += 1  # someone commits while we read: what we read may predate it
        return Person({"profile_id": pid}, None)

    cache = PersonCache(load, lambda: (version[0],), max_size=10)
    cache.get("a")
    cache.get("a")
    assert loads == ["a", "a"]


def test_a_read_overtaken_by_a_newer_one_is_not_kept() -> None:
    version = [1]
    loads: list[str] = []

    def load(pid: str) -> Person:
        loads.append(pid)
        if len(loads) == 1:  # while "a" is read, a commit lands and another request
            version[0] = 2  # reads "b" under the new token
            cache.get("b")
        return Person({"profile_id": pid, "read": len(loads)}, None)

    cache = PersonCache(load, lambda: (version[0],), max_size=10)
    cache.get("a")  # read before the commit: must not be cached under the new token
    assert cache.get("a").view["read"] == 3
    assert loads == ["a", "b", "a"]


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache, loads = counting_cache([1], max_size=2)
    for pid in ("a", "b", "a", "c", "a", "b"):
        cache.get(pid)
    assert loads == ["a", "b", "c", "b"]
    assert len(cache) == 2


def test_without_a_token_nothing_is_cached() -> None:
    loads: list[str] = []
    cache = PersonCache(lambda pid: loads.append(pid) or Person({}, None), None, max_size=10)
    cache.get("a")
    cache.get("a")
    assert (loads, cache.caching, len(cache)) == (["a", "a"], False, 0)
