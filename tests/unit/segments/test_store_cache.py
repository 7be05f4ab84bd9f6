"""The segment store's write-through working set (``SegmentStore.own``) answers like the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from personify.segments.store import SegmentStore, SegmentWrite

AT = "2026-01-01T00:00:00.000000Z"


def _stores(tmp_path: Path) -> tuple[SegmentStore, SegmentStore]:
    """The owner (cached) and a plain reader of the same file."""
    owner = SegmentStore(tmp_path / "segments.sqlite")
    owner.own(size=100)
    return owner, SegmentStore(tmp_path / "segments.sqlite")


def _seed(store: SegmentStore) -> None:
    store.write(
        SegmentWrite(
            states={("p1", "c1"): {"n": 1}, ("p1", "c2"): {"n": 2}},
            entered=[("vip", "p1", AT), ("buyers", "p1", AT)],
            due={"p1": AT},
            checkpoint=1,
        )
    )


def test_reads_after_writes_match_the_file(tmp_path: Path) -> None:
    owner, reader = _stores(tmp_path)
    _seed(owner)
    for store in (owner, reader):  # first read fills the owner's cache
        assert store.states(["p1", "p2"], ["c1"]) == {("p1", "c1"): {"n": 1}}
        assert store.memberships(["p1", "p2"]) == {"p1": {"vip": AT, "buyers": AT}, "p2": {}}
        assert store.dues(["p1", "p2"]) == {"p1": AT}
    later = "2026-02-01T00:00:00.000000Z"
    owner.write(
        SegmentWrite(
            states={("p1", "c1"): {"n": 5}, ("p2", "c1"): {"n": 1}},
            entered=[("vip", "p2", later)],
            exited=[("buyers", "p1", later)],
            due={"p1": None, "p2": later},
        )
    )
    for store in (owner, reader):
        assert store.states(["p1", "p2"], ["c1", "c2"]) == {
            ("p1", "c1"): {"n": 5},
            ("p1", "c2"): {"n": 2},
            ("p2", "c1"): {"n": 1},
        }
        assert store.memberships(["p1", "p2"]) == {"p1": {"vip": AT}, "p2": {"vip": later}}
        assert store.dues(["p1", "p2"]) == {"p2": later}


def test_callers_get_copies_they_may_change(tmp_path: Path) -> None:
    owner, _ = _stores(tmp_path)
    _seed(owner)
    owner.states(["p1"], ["c1"])[("p1", "c1")]["n"] = 99
    owner.memberships(["p1"])["p1"].clear()
    assert owner.states(["p1"], ["c1"]) == {("p1", "c1"): {"n": 1}}
    assert owner.memberships(["p1"])["p1"] == {"vip": AT, "buyers": AT}


def test_a_failed_write_leaves_the_cache_as_the_file(tmp_path: Path) -> None:
    owner, _ = _stores(tmp_path)
    _seed(owner)
    owner.states(["p1"], ["c1"])
    with pytest.raises(TypeError):  # an unserializable state fails before anything is stored
        owner.write(SegmentWrite(states={("p1", "c1"): {"n": object()}}))
    with pytest.raises(IntegrityError):  # the database refuses a NULL entered_at
        owner.write(SegmentWrite(entered=[("vip", "p9", None)]))  # type: ignore[list-item]
    assert owner.states(["p1"], ["c1"]) == {("p1", "c1"): {"n": 1}}
    assert owner.memberships(["p9"]) == {"p9": {}}


def test_erasure_reset_and_cleared_clauses_reach_the_cache(tmp_path: Path) -> None:
    owner, _ = _stores(tmp_path)
    _seed(owner)
    owner.write(SegmentWrite(states={("p2", "c1"): {"n": 3}}, entered=[("vip", "p2", AT)]))
    assert owner.memberships(["p1", "p2"])["p2"] == {"vip": AT}
    owner.delete_profiles(["p2"])
    assert owner.memberships(["p2"]) == {"p2": {}} and owner.states(["p2"], ["c1"]) == {}
    owner.write(SegmentWrite(clear_clauses=["c1"]))
    assert owner.states(["p1"], ["c1", "c2"]) == {("p1", "c2"): {"n": 2}}
    owner.reset(clauses=True)
    assert owner.memberships(["p1"]) == {"p1": {}}
    assert owner.states(["p1"], ["c2"]) == {} and owner.dues(["p1"]) == {}


def test_the_working_set_is_bounded(tmp_path: Path) -> None:
    owner, reader = _stores(tmp_path)
    owner.write(SegmentWrite(entered=[("vip", f"p{i}", AT) for i in range(300)]))
    everyone = [f"p{i}" for i in range(300)]
    assert owner.memberships(everyone) == reader.memberships(everyone)
    cache = owner._cache
    assert cache is not None and len(cache.members) <= 100
