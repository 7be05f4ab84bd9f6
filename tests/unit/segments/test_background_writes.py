"""Segment batches stored by a writer process (the processing worker's segment store)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.unit.helpers import T0

from personify.clock import FixedClock
from personify.config import Settings
from personify.errors import Unavailable
from personify.facade import Personify
from personify.platform import build
from personify.profiles.records import iso
from personify.segments.store import SegmentStore, SegmentWrite


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SegmentStore]:
    s = SegmentStore(tmp_path / "segments.sqlite")
    s.own()
    s.in_background()
    yield s
    s.close()


def _entered(pid: str | None, segment: str = "vip") -> SegmentWrite:
    return SegmentWrite(entered=[(segment, pid, "2024-05-01T12:00:00.000000Z")])  # type: ignore[list-item]


def _p1_then_a_failing_batch(store: SegmentStore) -> None:
    """Store p1's entry (offset 1) and read it into the working set, then hand over a batch
    (offset 2) that exits p1 and fails in the writer."""
    first = _entered("p1")
    first.checkpoint = 1
    store.write(first)
    store.memberships(["p1"])  # in the working set
    bad = _entered(None)  # members.profile_id is NOT NULL
    bad.exited = [("vip", "p1", "2024-05-01T13:00:00.000000Z")]
    bad.checkpoint = 2
    store.write(bad)


def test_batches_land_in_the_file_from_another_process(store: SegmentStore, tmp_path: Path) -> None:
    writer = store._writer
    assert writer is not None and writer.pid not in (None, os.getpid())
    for i in range(3):
        w = _entered(f"p{i}")
        w.checkpoint = i + 1
        store.write(w)
    assert store.memberships(["p0", "p2"]) == {
        "p0": {"vip": "2024-05-01T12:00:00.000000Z"},
        "p2": {"vip": "2024-05-01T12:00:00.000000Z"},
    }
    reader = SegmentStore(tmp_path / "segments.sqlite")  # what the API process reads
    assert reader.checkpoint() == 3
    assert reader.sizes() == {"vip": 3}
    reader.close()


def test_after_a_failed_write_writes_are_refused_until_the_checkpoint_is_read(
    store: SegmentStore,
) -> None:
    _p1_then_a_failing_batch(store)  # returns before the writer answers
    # the failure shows to the next writer, and to every one after it ...
    for _ in range(2):
        with pytest.raises(Unavailable, match="storing a batch of segments failed"):
            store.write(SegmentWrite(checkpoint=3))
    with pytest.raises(Unavailable):
        store.settle()
    with pytest.raises(Unavailable):  # nothing is read on top of the lost batch either
        store.memberships(["p1"])
    assert store.checkpoint() == 1  # reading it is resuming from it ...
    # ... and the working set forgot the exit the lost batch made
    assert store.memberships(["p1"]) == {"p1": {"vip": "2024-05-01T12:00:00.000000Z"}}
    again = _entered("p2")
    again.checkpoint = 2
    store.write(again)
    store.settle()
    assert store.checkpoint() == 2


def test_reads_wait_for_the_batch_in_flight_only_for_the_profiles_it_writes(
    store: SegmentStore,
) -> None:
    """The engine's next batch reads its profiles' state while the writer stores the last
    one: the working set holds what is in flight, the database the rest. Only a database
    read of a profile the batch in flight writes waits for it."""
    import threading
    import time

    first = _entered("p1")
    first.checkpoint = 1
    store.write(first)
    store.memberships(["p1"])  # p1 is in the working set now
    store.dues(["p1"])
    writer = store._writer
    assert writer is not None and writer.pid is not None
    os.kill(writer.pid, signal.SIGSTOP)  # the next batch stays in flight
    try:
        second = _entered("p1", "loyal")
        second.entered.append(("vip", "p2", "2024-05-01T12:00:00.000000Z"))  # p2: not held
        second.checkpoint = 2
        store.write(second)
        assert writer.in_flight
        # answered at once: p1 from the working set (with the batch in flight), p9 from
        # the database (the batch in flight does not write it)
        assert store.memberships(["p1"])["p1"].keys() == {"vip", "loyal"}
        assert store.dues(["p1"]) == {}
        assert store.memberships(["p9"]) == {"p9": {}}
        assert store.encoded_states(["p9"]) == {}
        # p2 is not held and the batch in flight writes it: the read waits for the batch
        got: list[dict[str, dict[str, str]]] = []
        reader = threading.Thread(target=lambda: got.append(store.memberships(["p2"])))
        reader.start()
        deadline = time.monotonic() + 10
        while not writer.lock.locked() and reader.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert reader.is_alive() and got == []
    finally:
        os.kill(writer.pid, signal.SIGCONT)
    reader.join(30)
    assert got == [{"p2": {"vip": "2024-05-01T12:00:00.000000Z"}}]
    assert store.checkpoint() == 2


def test_a_failure_already_answered_stops_reads_of_the_working_set(store: SegmentStore) -> None:
    import time

    _p1_then_a_failing_batch(store)
    deadline = time.monotonic() + 30
    refused: Unavailable | None = None
    while refused is None and time.monotonic() < deadline:  # no write, no settle: only reads
        try:
            store.memberships(["p1"])
        except Unavailable as exc:
            refused = exc
        time.sleep(0.02)
    assert refused is not None and "storing a batch of segments failed" in refused.message
    with pytest.raises(Unavailable):  # kept, not used up by the read that saw it
        store.memberships(["p1"])
    assert store.checkpoint() == 1
    # the working set forgot the lost exit
    assert store.memberships(["p1"]) == {"p1": {"vip": "2024-05-01T12:00:00.000000Z"}}


def test_only_the_only_writer_of_a_file_may_write_in_the_background(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only writer"):
        SegmentStore(tmp_path / "segments.sqlite").in_background()
    memory = SegmentStore(None)
    memory.own()
    with pytest.raises(ValueError, match="segments file"):
        memory.in_background()


def _engine(data: Path, background: bool) -> tuple[Personify, FixedClock]:
    clock = FixedClock(T0)
    settings = Settings(data_dir=data, write_keys="wk=web", admin_key="admin")
    return build(settings, clock, background_writes=background), clock


def _three_views(p: Personify) -> None:
    body: dict[str, Any] = {
        "key": "three_views",
        "condition": {"$event": {"name": "Product Viewed", "within": "7d", "count": {"$gte": 3}}},
    }
    p.stores.definitions.put("segment", body["key"], body, actor="test")
    assert p.segment_engine is not None
    p.segment_engine.reload()


def test_a_worker_that_writes_in_the_background_decides_the_same(tmp_path: Path) -> None:
    results = []
    for background in (False, True):
        p, clock = _engine(tmp_path / str(background), background)
        clock.set(T0 + timedelta(hours=1))  # after every event below
        _three_views(p)
        for i in range(40):
            user = f"u{i % 7}"
            p.track(
                user_id=user,
                event="Product Viewed",
                properties={},
                timestamp=iso(T0 + timedelta(minutes=i)),
            )
            if i % 9 == 0:
                p.processor.step()  # a batch; its writes overlap the next one's work
        p.drain()
        sizes = p.stores.segments.sizes()
        changes = [(c["segment"], c["change"]) for c in p.stores.segments.changes()]
        results.append((sizes, len(changes)))
        p.close()
    assert results[0] == results[1]
    assert results[0][0] == {"three_views": 7}


def test_a_lost_segment_batch_is_redone_without_counting_twice(tmp_path: Path) -> None:
    p, clock = _engine(tmp_path, True)
    clock.set(T0 + timedelta(hours=1))
    try:
        _three_views(p)
        p.track(user_id="u1", event="Product Viewed", properties={}, timestamp=iso(T0))
        p.drain()
        writer = p.stores.segments._writer
        assert writer is not None and writer.pid is not None
        os.kill(writer.pid, signal.SIGSTOP)  # the next batch stays in flight ...
        try:
            for minutes in (1, 2):
                p.track(
                    user_id="u1",
                    event="Product Viewed",
                    properties={},
                    timestamp=iso(T0 + timedelta(minutes=minutes)),
                )
            p.processor.step()
        finally:
            os.kill(writer.pid, signal.SIGKILL)  # ... and is lost with its writer
        with pytest.raises(Unavailable, match="stopped before answering"):
            p.drain()
        p.drain()  # redone from the engine's stored checkpoint, with a new writer
        assert p.profile_by("user_id", "u1")["segments"] == ["three_views"]
        engine = p.segment_engine
        assert engine is not None
        pid = p.lookup("user_id", "u1")
        [state] = p.stores.segments.states(
            [pid], list(engine.segments["three_views"].state_ids)
        ).values()
        assert len(state["w"]) == 3  # each view once
    finally:
        p.close()


def test_a_new_worker_waits_for_a_segments_writer_left_running(tmp_path: Path) -> None:
    """Nothing reads the segment store (the engine's start, the processor's checkpoints)
    before a writer left by a killed worker has finished its batch."""
    import fcntl
    import threading

    from personify.storage.sqlite.writer import lock_path

    first, _ = _engine(tmp_path, False)  # creates the files
    first.close()
    holder = lock_path(tmp_path / "segments.sqlite").open("w")
    fcntl.flock(holder, fcntl.LOCK_EX)
    built: list[Personify] = []
    t = threading.Thread(target=lambda: built.append(_engine(tmp_path, True)[0]))
    t.start()
    t.join(2.0)
    assert t.is_alive() and not built
    fcntl.flock(holder, fcntl.LOCK_UN)
    holder.close()
    t.join(60)
    assert built
    built[0].close()
