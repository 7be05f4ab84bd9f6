"""Profile writes in a child process, so the processing worker's next batch overlaps them.

The processing worker is one Python thread, and storing a batch's profile documents (an
upsert per touched profile, then the commit) is about a fifth of its time. SQLite's work
needs no Python, but a thread would still contend for the interpreter lock between rows, so
the rows go to a small child process that only writes them (:func:`main`).

:class:`BackgroundProfileStore` keeps at most one batch in flight:

* ``apply`` encodes the batch in the caller's thread, waits for the previous batch's answer
  and hands the rows over; it returns before they are stored.
* A read waits for the batch in flight when it asks for what that batch writes (profile
  ids, identity keys; every other read waits for it), so a reader never sees the store
  behind what was applied. A failed write is remembered and raised by the next ``apply`` or
  ``settle``: the processor, which calls those, then reloads its position from the store
  and processes the batch again (the write is one transaction: all of it landed or none).
* The checkpoint is written in the same transaction as the batch, so what the API reads as
  the processing position is always durable.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from personify.errors import Unavailable
from personify.storage.ports import ProfileChanges
from personify.storage.sqlite.profiles import (
    EncodedChanges,
    SqlProfileStore,
    encode_changes,
    sqlite_engine,
)


class BackgroundProfileStore:
    """A :class:`SqlProfileStore` on SQLite whose writes run in a child process."""

    def __init__(self, store: SqlProfileStore, url: str) -> None:
        lock_path(url)  # a SQLite file, or ValueError
        self.inner = store
        self._url = url
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._in_flight = False  # a batch (or the start-up handshake) awaits its answer
        # What the batch in flight writes: reads of anything else need not wait for it.
        self._writing_ids: set[str] = set()
        self._writing_keys: set[tuple[str, str]] = set()
        self._failure: Unavailable | None = None
        self._spawn()  # start-up (imports) now, not on the first batch

    # -- the writer process -----------------------------------------------------------------
    def _spawn(self) -> Connection:
        mine, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno()), self._url],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._conn = Connection(mine.detach())
        # Its first answer says it holds the writer lock: a writer left over from a killed
        # worker has finished its batch, so the checkpoint read next is final.
        self._in_flight = True
        return self._conn

    def _drop_writer(self) -> None:
        """Close the connection and reap the child (it exits when its socket closes)."""
        conn, proc = self._conn, self._proc
        self._conn = self._proc = None
        if conn is not None:
            conn.close()
        if proc is not None:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _wait(self) -> None:
        """Collect the answer for the batch in flight (lock held); failures are kept."""
        if not self._in_flight:
            return
        self._in_flight = False
        self._writing_ids, self._writing_keys = set(), set()
        assert self._conn is not None
        try:
            status, detail = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._drop_writer()
            self._failure = Unavailable(
                f"the profile writer process stopped before answering ({exc!r})",
                hint="processing resumes from the last stored batch by itself",
            )
            return
        if status != "ok":
            self._failure = Unavailable(
                f"storing a batch of profiles failed: {detail}",
                hint="processing retries from the last stored batch; check the disk and "
                "state.sqlite if this repeats",
            )

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def _send(self, rows: EncodedChanges, checkpoint: int | None) -> None:
        for attempt in range(2):
            if self._conn is None:
                self._spawn()
                self._wait()
                self._raise_failure()
            conn = self._conn
            assert conn is not None
            try:
                conn.send((rows, checkpoint))
            except OSError:
                self._drop_writer()  # it died since the last batch: this one was not sent
                if attempt:
                    raise
                continue
            self._in_flight = True
            self._writing_ids = {row[0] for row in rows.profiles}
            self._writing_keys = {(kind, value) for kind, value, _ in rows.identities}
            return

    # -- writes -----------------------------------------------------------------------------
    def apply(self, changes: ProfileChanges, checkpoint: int | None = None) -> None:
        rows = encode_changes(changes)  # serialized here, while the previous batch is stored
        with self._lock:
            self._wait()
            self._raise_failure()
            self._send(rows, checkpoint)

    def settle(self) -> None:
        with self._lock:
            self._wait()
            self._raise_failure()

    def delete_profiles(self, profile_ids: Iterable[str]) -> int:
        self._settled()
        return self.inner.delete_profiles(profile_ids)

    # -- reads (after the batch in flight) -------------------------------------------------
    def _settled(self) -> None:
        with self._lock:
            self._wait()

    # The processor's own reads (a batch's new identities and profiles) only wait when the
    # batch in flight writes what they ask for: its other rows read the same either way.
    def get_many(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(profile_ids)
        with self._lock:
            if self._in_flight and not self._writing_ids.isdisjoint(ids):
                self._wait()
        return self.inner.get_many(ids)

    def lookup_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        asked = list(keys)
        with self._lock:
            if self._in_flight and not self._writing_keys.isdisjoint(asked):
                self._wait()
        return self.inner.lookup_many(asked)

    def checkpoint(self) -> int:
        self._settled()
        return self.inner.checkpoint()

    def history(self, profile_id: str) -> dict[str, list[dict[str, Any]]]:
        self._settled()
        return self.inner.history(profile_id)

    def count(self) -> int:
        self._settled()
        return self.inner.count()

    def scan(self, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        self._settled()
        return self.inner.scan(batch_size)

    def close(self) -> None:
        with self._lock:
            self._wait()
            self._failure = None
            self._drop_writer()
        self.inner.close()


def background(store: SqlProfileStore) -> BackgroundProfileStore | SqlProfileStore:
    """``store`` with its writes in a child process, when it is a SQLite file."""
    url = make_url(store.url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return store
    return BackgroundProfileStore(store, store.url)


def lock_path(url: str) -> Path:
    """The lock a writer holds while it runs (beside the database file)."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError(f"a profile writer process needs a SQLite file, not {url!r}")
    return Path(database + ".writer.lock")


def main() -> None:
    """The writer process: store each batch it receives, answer ``ok`` or the error."""
    conn = Connection(int(sys.argv[1]))
    url = sys.argv[2]
    try:
        lock = lock_path(url).open("w")
        # Wait for a writer left over from a killed worker to finish its batch and exit.
        fcntl.flock(lock, fcntl.LOCK_EX)
        store = SqlProfileStore(sqlite_engine(url))
    except Exception as exc:
        conn.send(("err", f"the profile writer could not start: {exc!r}"))
        return
    conn.send(("ok", None))
    try:
        while True:
            try:
                rows, checkpoint = conn.recv()
            except (EOFError, OSError):
                return  # the parent closed the connection or died
            try:
                store.write(rows, checkpoint)
            except Exception as exc:  # answered; the parent raises it to the processor
                conn.send(("err", repr(exc)))
            else:
                conn.send(("ok", None))
    finally:
        with contextlib.suppress(Exception):
            store.close()


if __name__ == "__main__":
    main()
