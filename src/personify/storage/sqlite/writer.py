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
  failure for the next ``submit`` or ``settle``: readers call it when they would otherwise
  read behind what was submitted, the processor learns of the failure and redoes the batch
  from the stored checkpoint (each batch is one transaction: all of it landed or none).
  :meth:`~WriterProcess.poll` collects an answer only if it has already arrived, for
  readers that need not wait.
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
    """The parent's end of a writer process for ``kind`` (``profiles``, ``segments``).

    A failed write is *kept*: :meth:`check` raises it to every caller until
    :meth:`recover` (the processor reads its checkpoints again), so no reader or other
    writer can consume it and leave the processor believing the batch was stored.
    """

    START_TIMEOUT_S = 120.0  # a writer left by a killed worker must finish within this

    def __init__(self, kind: str, database: Path) -> None:
        self.kind = kind
        self.database = database
        self.lock = threading.Lock()  # held while talking to the child
        self._conn: Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.in_flight = False  # a batch awaits its answer
        self._failure: str | None = None
        self._closed = False
        with self.lock:
            self._start()  # before anything reads the database: see _start
            self.check()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        """Start a writer and wait for its first answer, which says it holds the writer
        lock: a writer left by a killed worker has then finished its batch, so whatever is
        read next (the checkpoints) is final."""
        mine, theirs = socket.socketpair()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _ENTRY, self.kind, str(theirs.fileno()), str(self.database)],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self._conn = Connection(mine.detach())
        if not self._conn.poll(self.START_TIMEOUT_S):
            self._drop(kill=True)
            self._failure = (
                f"the {self.kind} writer did not start within {self.START_TIMEOUT_S:.0f} s "
                f"(another writer holds {lock_path(self.database).name})"
            )
            return
        self.in_flight = True
        self.wait()
        if self._failure is not None:
            self._drop()

    def _drop(self, kill: bool = False) -> None:
        """Close the connection and reap the child (it exits when its socket closes)."""
        conn, proc = self._conn, self._proc
        self._conn = self._proc = None
        if conn is not None:
            conn.close()
        if proc is not None:
            if kill:
                proc.kill()
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
            self._failure = f"the {self.kind} writer process stopped before answering ({exc!r})"
            return
        if status != "ok":
            self._failure = f"storing a batch of {self.kind} failed: {detail}"

    def poll(self) -> None:
        """Collect the answer for the batch in flight if it has arrived, without waiting for
        one still on its way (lock held); a failure is kept."""
        if self.in_flight and self._conn is not None and self._conn.poll(0):
            self.wait()

    @property
    def failed(self) -> bool:
        """A write failed and the processor has not recovered yet (lock held)."""
        return self._failure is not None

    def check(self) -> None:
        """Raise the kept failure, if any (lock held); it stays until :meth:`recover`."""
        if self._failure is not None:
            raise Unavailable(
                self._failure,
                hint=f"processing redoes the batches after the stored checkpoint by itself; "
                f"check the disk and {self.database.name} if this repeats",
            )

    def recover(self) -> None:
        """The caller resumes from what is stored: forget the failure (lock held)."""
        self.wait()
        self._failure = None

    def submit(self, payload: Any) -> None:
        """Send a batch (lock held), after the previous one's answer; raises instead if a
        write failed since the last :meth:`recover`."""
        if self._closed:
            raise Unavailable(f"the {self.kind} writer is closed")
        self.wait()
        self.check()
        for attempt in range(2):
            if self._conn is None:
                self._start()
                self.check()
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
            self._closed = True
            self.wait()
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
