"""A child process that writes batches into one SQLite file, one batch in flight.

The processing worker is one Python thread. Storing a batch (profile documents, segment
memberships and clause states) is SQLite's work, not Python's, yet a thread would still
contend for the interpreter lock between rows. So the worker encodes each batch and hands
the rows to a small child process that only writes them (:func:`main`), while it goes on
with the next batch.

:class:`WriterProcess` is the parent's end:

* :meth:`~WriterProcess.submit` waits for the previous batch's answer, raises its failure
  if it had one, and sends the next batch; it returns before the batch is stored.
* :meth:`~WriterProcess.wait` collects the answer of the batch in flight and keeps a
  failure for the next ``submit`` or ``settle``: readers call it so that they never read
  behind what was submitted, the processor learns of the failure and redoes the batch from
  the stored checkpoint (each batch is one transaction: all of it landed or none).
* A writer holds a lock beside the database while it runs: one left by a killed worker
  finishes its batch before the next writer answers, so the checkpoint read after start-up
  is final.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from personify.errors import Unavailable

# ``-c`` rather than ``-m``: the package imports this module, which ``-m`` would run twice.
_ENTRY = "from personify.storage.sqlite.writer import main; main()"


class WriterProcess:
    """The parent's end of a writer process for ``kind`` (``profiles``, ``segments``)."""

    def __init__(self, kind: str, database: Path) -> None:
        self.kind = kind
        self.database = database
        self.lock = threading.Lock()  # held while talking to the child
        self._conn: Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.in_flight = False  # a batch (or the start-up handshake) awaits its answer
        self._failure: Unavailable | None = None
        with self.lock:
            self._spawn()  # start-up (imports) now, not on the first batch

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _spawn(self) -> None:
        mine, theirs = socket.socketpair()
        fd = str(theirs.fileno())
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _ENTRY, self.kind, fd, str(self.database)],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._conn = Connection(mine.detach())
        self.in_flight = True  # its first answer says it holds the writer lock

    def _drop(self) -> None:
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

    def wait(self) -> None:
        """Collect the answer for the batch in flight (lock held); a failure is kept."""
        if not self.in_flight:
            return
        self.in_flight = False
        assert self._conn is not None
        try:
            status, detail = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._drop()
            self._failure = Unavailable(
                f"the {self.kind} writer process stopped before answering ({exc!r})",
                hint="processing resumes from the last stored batch by itself",
            )
            return
        if status != "ok":
            self._failure = Unavailable(
                f"storing a batch of {self.kind} failed: {detail}",
                hint=f"processing retries from the last stored batch; check the disk and "
                f"{self.database.name} if this repeats",
            )

    @property
    def failed(self) -> bool:
        """A failure is waiting to be raised (lock held)."""
        return self._failure is not None

    def raise_failure(self) -> None:
        """Raise the kept failure once (lock held)."""
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def submit(self, payload: Any) -> None:
        """Send a batch (lock held): after the previous one's answer, raised if it failed."""
        self.wait()
        self.raise_failure()
        for attempt in range(2):
            if self._conn is None:
                self._spawn()
                self.wait()
                self.raise_failure()
            assert self._conn is not None
            try:
                self._conn.send(payload)
            except OSError:
                self._drop()  # it died since the last batch: this one was not sent
                if attempt:
                    raise
                continue
            self.in_flight = True
            return

    def close(self) -> None:
        with self.lock:
            self.wait()
            self._failure = None
            self._drop()


def lock_path(database: Path) -> Path:
    """The lock a writer holds while it runs (beside the database file)."""
    return database.with_name(database.name + ".writer.lock")


def _handler(kind: str, database: Path) -> tuple[Callable[[Any], None], Callable[[], None]]:
    """How a writer of ``kind`` stores one batch, and how it closes."""
    if kind == "profiles":
        from personify.storage.sqlite.profiles import SqlProfileStore, sqlite_engine

        profiles = SqlProfileStore(sqlite_engine(f"sqlite:///{database}"))
        return (lambda batch: profiles.write(*batch)), profiles.close
    if kind == "segments":
        from personify.segments.store import SegmentStore

        segments = SegmentStore(database)
        return (lambda batch: segments.write_encoded(*batch)), segments.close
    raise ValueError(f"unknown writer kind {kind!r}")


def main() -> None:
    """The writer process: store each batch it receives, answer ``ok`` or the error."""
    kind, fd, database = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    conn = Connection(fd)
    try:
        lock = lock_path(database).open("w")
        # Wait for a writer left over from a killed worker to finish its batch and exit.
        fcntl.flock(lock, fcntl.LOCK_EX)
        write, close = _handler(kind, database)
    except Exception as exc:
        conn.send(("err", f"the writer could not start: {exc!r}"))
        return
    conn.send(("ok", None))
    try:
        while True:
            try:
                batch = conn.recv()
            except (EOFError, OSError):
                return  # the parent closed the connection or died
            try:
                write(batch)
            except Exception as exc:  # answered; the parent raises it to the processor
                conn.send(("err", repr(exc)))
            else:
                conn.send(("ok", None))
    finally:
        with contextlib.suppress(Exception):
            close()
