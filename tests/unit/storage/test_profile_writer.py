"""The profile store whose writes run in a child process (the processing worker's)."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from personify.errors import Unavailable
from personify.profiles.records import new_profile
from personify.storage.ports import ProfileChanges
from personify.storage.sqlite.profile_writer import BackgroundProfileStore, background
from personify.storage.sqlite.profiles import SqlProfileStore, sqlite_engine


def _person(pid: str, user: str) -> ProfileChanges:
    doc = new_profile(pid, "2024-01-01T00:00:00.000000Z")
    doc["identities"]["user_id"].append(user)
    return ProfileChanges(profiles={pid: doc}, identities={("user_id", user): pid})


def _broken(pid: str) -> ProfileChanges:
    """A batch the database refuses: an identity without a profile id (NOT NULL)."""
    changes = _person(pid, f"user-{pid}")
    changes.identities[("email", f"{pid}@example.com")] = None  # type: ignore[assignment]
    return changes


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite"


@pytest.fixture
def store(db: Path) -> Iterator[BackgroundProfileStore]:
    url = f"sqlite:///{db}"
    s = BackgroundProfileStore(SqlProfileStore(sqlite_engine(url)), url)
    yield s
    s.close()


def _stored_checkpoint(db: Path) -> int:
    """What another process (the API) reads: the database file itself."""
    with sqlite3.connect(db) as con:
        row = con.execute("SELECT \"offset\" FROM checkpoints WHERE name = 'profiles'").fetchone()
    return int(row[0]) if row else 0


def test_writes_happen_in_a_child_process_and_reads_wait_for_them(
    store: BackgroundProfileStore, db: Path
) -> None:
    proc = store.writer._proc
    assert proc is not None and proc.pid != os.getpid() and proc.poll() is None
    for i in range(1, 6):
        store.apply(_person(f"p{i}", f"u{i}"), checkpoint=i)
        # a read right after apply sees the batch, whatever the child's progress
        assert store.lookup_many([("user_id", f"u{i}")]) == {("user_id", f"u{i}"): f"p{i}"}
    store.settle()
    assert _stored_checkpoint(db) == 5
    assert store.count() == 5
    assert store.get_many(["p3"])["p3"]["identities"]["user_id"] == ["u3"]


def test_after_a_failed_write_every_call_raises_until_the_checkpoint_is_read(
    store: BackgroundProfileStore, db: Path
) -> None:
    store.apply(_person("p1", "u1"), checkpoint=1)
    store.apply(_broken("p2"), checkpoint=2)
    # readers, other writers and settle all hear of it, so none can use it up and leave
    # the processor believing the batch was stored
    with pytest.raises(Unavailable, match="storing a batch of profiles failed"):
        store.get_many(["p2"])  # written by the batch in flight: waits for it
    with pytest.raises(Unavailable):
        store.get_many(["p1"])
    with pytest.raises(Unavailable, match="NOT NULL"):
        store.apply(_person("p3", "u3"), checkpoint=3)
    for _ in range(2):
        with pytest.raises(Unavailable):
            store.settle()
    # the failing batch was one transaction: nothing of it landed, the checkpoint stayed
    assert _stored_checkpoint(db) == 1
    assert store.checkpoint() == 1  # the processor resumes from here ...
    assert store.lookup_many([("user_id", "user-p2")]) == {}  # ... and reads work again
    store.apply(_person("p2", "u2"), checkpoint=2)
    store.settle()
    assert _stored_checkpoint(db) == 2


def test_a_scan_reads_each_page_after_the_batch_in_flight(store: BackgroundProfileStore) -> None:
    """Key rotation re-seals page by page while processing goes on between pages: a page
    must not be read from before a batch that was handed over, or writing it back would
    undo that batch."""
    import threading

    for i in range(1, 5):
        store.apply(_person(f"p{i}", f"u{i}"))
    store.settle()
    pages = store.scan(batch_size=2)
    assert [d["profile_id"] for d in next(pages)] == ["p1", "p2"]
    proc = store.writer._proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        changed = _person("p3", "u3")
        changed.profiles["p3"]["traits"]["plan"] = {"value": "pro"}
        store.apply(changed)
        got: list[list[dict[str, object]]] = []
        reader = threading.Thread(target=lambda: got.append(next(pages)))
        reader.start()
        reader.join(1.0)
        assert reader.is_alive()  # waits for the batch in flight
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    reader.join(30)
    assert [d["profile_id"] for d in got[0]] == ["p3", "p4"]
    assert got[0][0]["traits"] == {"plan": {"value": "pro"}}


def test_settle_reports_a_failed_write(store: BackgroundProfileStore) -> None:
    store.apply(_broken("p1"), checkpoint=1)
    with pytest.raises(Unavailable, match="NOT NULL"):
        store.settle()
    assert store.checkpoint() == 0
    store.settle()  # nothing more to report once resumed


def test_a_writer_killed_between_batches_is_replaced(
    store: BackgroundProfileStore, db: Path
) -> None:
    store.apply(_person("p1", "u1"), checkpoint=1)
    store.settle()
    first = store.writer._proc
    assert first is not None
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    store.apply(_person("p2", "u2"), checkpoint=2)
    store.settle()
    assert store.writer._proc is not None and store.writer._proc.pid != first.pid
    assert _stored_checkpoint(db) == 2


def test_a_writer_killed_with_a_batch_in_flight_fails_that_batch_only(
    store: BackgroundProfileStore, db: Path
) -> None:
    store.settle()  # started
    proc = store.writer._proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGSTOP)  # it cannot take the batch before it is killed
    store.apply(_person("p1", "u1"), checkpoint=1)
    os.kill(proc.pid, signal.SIGKILL)
    with pytest.raises(Unavailable, match="stopped before answering"):
        store.settle()
    assert _stored_checkpoint(db) == 0
    assert store.checkpoint() == 0
    store.apply(_person("p1", "u1"), checkpoint=1)
    store.settle()
    assert _stored_checkpoint(db) == 1


def test_a_new_writer_waits_for_the_lock_of_one_still_running(db: Path) -> None:
    """A writer left by a killed worker finishes its batch before the next worker reads
    the checkpoint: the next writer only answers once it holds the writer lock."""
    import fcntl
    import threading

    from personify.storage.sqlite.writer import lock_path

    url = f"sqlite:///{db}"
    SqlProfileStore(sqlite_engine(url)).close()  # the file exists
    holder = lock_path(db).open("w")
    fcntl.flock(holder, fcntl.LOCK_EX)
    opened: list[BackgroundProfileStore] = []
    done = threading.Event()

    def start() -> None:
        s = BackgroundProfileStore(SqlProfileStore(sqlite_engine(url)), url)
        opened.append(s)
        s.checkpoint()  # waits for the handshake
        done.set()

    t = threading.Thread(target=start)
    t.start()
    assert not done.wait(1.5)  # blocked on the lock
    fcntl.flock(holder, fcntl.LOCK_UN)
    holder.close()
    assert done.wait(30)
    t.join()
    opened[0].close()


def test_close_reaps_the_writer(db: Path) -> None:
    url = f"sqlite:///{db}"
    s = BackgroundProfileStore(SqlProfileStore(sqlite_engine(url)), url)
    s.apply(_person("p1", "u1"), checkpoint=1)
    proc = s.writer._proc
    assert proc is not None
    s.close()
    assert proc.poll() is not None
    assert _stored_checkpoint(db) == 1  # the batch in flight was waited for


def test_only_sqlite_files_get_a_writer_process(tmp_path: Path) -> None:
    memory_db = SqlProfileStore(sqlite_engine("sqlite:///:memory:"))
    assert background(memory_db) is memory_db
    file_db = SqlProfileStore(sqlite_engine(f"sqlite:///{tmp_path / 'state.sqlite'}"))
    wrapped = background(file_db)
    assert isinstance(wrapped, BackgroundProfileStore)
    wrapped.close()


def test_reads_wait_only_for_what_the_batch_in_flight_writes(
    store: BackgroundProfileStore,
) -> None:
    """The processor reads the next batch's identities while the last one is stored: rows
    the batch in flight does not write read the same before and after it, so those reads
    go ahead; a read of a row it writes waits for it."""
    import threading

    store.apply(_person("p1", "u1"), checkpoint=1)
    store.settle()
    proc = store.writer._proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGSTOP)  # the next batch stays in flight
    try:
        store.apply(_person("p2", "u2"), checkpoint=2)
        assert store.lookup_many([("user_id", "u1")]) == {("user_id", "u1"): "p1"}
        assert list(store.get_many(["p1"])) == ["p1"]
        answers: list[object] = []
        reader = threading.Thread(
            target=lambda: answers.append(store.lookup_many([("user_id", "u2")]))
        )
        reader.start()
        reader.join(1.0)
        assert reader.is_alive() and not answers  # waits for the batch that writes u2
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    reader.join(30)
    assert answers == [{("user_id", "u2"): "p2"}]


def test_merged_into_waits_for_the_batch_in_flight(store: BackgroundProfileStore) -> None:
    """An erasure asks which profiles were merged into the person's: a merge still being
    stored must be in the answer, or that profile would outlive the erasure."""
    import threading

    store.apply(_person("p1", "u1"), checkpoint=1)
    store.settle()
    proc = store.writer._proc
    assert proc is not None
    os.kill(proc.pid, signal.SIGSTOP)  # the merge stays in flight
    try:
        loser = new_profile("p2", "2024-01-01T00:00:00.000000Z")
        loser["merged_into"] = "p1"
        store.apply(ProfileChanges(profiles={"p2": loser}), checkpoint=2)
        answers: list[object] = []
        reader = threading.Thread(target=lambda: answers.append(store.merged_into(["p1"])))
        reader.start()
        reader.join(1.0)
        assert reader.is_alive() and not answers
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    reader.join(30)
    assert answers == [["p2"]]


def test_a_writer_process_needs_a_sqlite_file() -> None:
    memory_db = SqlProfileStore(sqlite_engine("sqlite:///:memory:"))
    with pytest.raises(ValueError, match="needs a SQLite file"):
        BackgroundProfileStore(memory_db, "sqlite:///:memory:")
