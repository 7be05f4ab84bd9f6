"""The processor in its own process, for ``personify serve``.

Python runs one thread at a time per process, so on a multi-core machine the server keeps
collection (HTTP, validation, the durable log) in the API process and moves processing
(identity, profiles, the event store) to a child process that owns the event store. The API
reads profiles from the shared state database and asks the worker, over a local socket,
for event-store reads (the timeline). The worker holds an exclusive lock on the data
directory's ``worker.lock`` so that two processors never run at once, and exits when its
parent dies.

The same :class:`~personify.profiles.processor.Processor` does the work in both modes; this
module only supervises it and forwards reads.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing import AuthenticationError
from multiprocessing.connection import (
    Connection,
    Listener,
    answer_challenge,
    deliver_challenge,
)
from pathlib import Path
from typing import Any

import orjson

from personify.config import Settings
from personify.errors import PersonifyError, Unavailable
from personify.storage.ports import EventLog, ProfileStore

# The writes the API forwards: privacy erasure and retention of events.
_READ_METHODS = (
    "timeline",
    "count",
    "count_distinct_messages",
    "checkpoint",
    "delete_profiles",
    "delete_before",
)
# Segment work that needs the event history runs where the event store is.
_SEGMENT_METHODS = {"segments_dry_run": "dry_run", "segments_rebuild": "rebuild"}
# PII key rotation: the worker switches keys and re-seals the stores it writes
# (``personify.privacy.rotation``).
_PRIVACY_METHODS = {"privacy_reload_keys": "reload_keys", "privacy_reseal": "reseal"}
# Erasure: processing forgets the erased profiles (``Processor.forget``).
_PROCESSING_METHODS = {"processing_forget": "forget", "processing_status": "status"}
# Calls answered in moments, which a caller waits for at most ``CALL_TIMEOUT_S``; the others
# work on whole stores (an erasure's delete rewrites the event file, a rebuild replays the
# history) and take as long as the data is big, so they are waited for until done: a timed-out
# delete would still run, and its caller would lose the message ids it returns.
_TIMED = frozenset(
    (
        "timeline",
        "count",
        "checkpoint",
        "processing_forget",
        "processing_status",
        "privacy_reload_keys",
    )
)


def socket_path(data_dir: Path) -> Path:
    return data_dir / "worker.sock"


def _wait_for_answer(conn: Connection, timeout: float | None) -> None:
    """Raise ``TimeoutError`` unless something to read arrives within ``timeout`` seconds."""
    if timeout is not None and not conn.poll(timeout):
        raise TimeoutError


def _connect(path: Path, authkey: bytes, timeout: float) -> Connection:
    """``Client(path, authkey=authkey)``, within ``timeout`` seconds: a worker that no longer
    accepts (stopped, or stuck) still lets a socket connect while its listen queue has room,
    then ``Client`` would wait for its challenge forever, and once the queue is full the
    connect itself would block forever."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)  # a full listen queue answers EAGAIN at once, not blocking
        try:
            sock.connect(str(path))
            break
        except BlockingIOError:
            sock.close()
            if time.monotonic() >= deadline:
                raise TimeoutError from None
            time.sleep(0.05)
        except BaseException:
            sock.close()
            raise
    sock.setblocking(True)
    conn = Connection(sock.detach())
    try:
        _wait_for_answer(conn, max(deadline - time.monotonic(), 0.0))
        answer_challenge(conn, authkey)
        deliver_challenge(conn, authkey)
    except BaseException:
        conn.close()
        raise
    return conn


class RemoteEventStore:
    """The event store as seen from the API process: reads forwarded to the worker.

    Connecting, and a call in ``_TIMED``, wait at most ``CALL_TIMEOUT_S`` for the worker: a
    worker that takes a call and never answers must not hold an API request, or an erasure,
    forever. The call is not sent again, since the worker may still be running it.
    """

    CALL_TIMEOUT_S = 60.0

    def __init__(self, data_dir: Path, authkey: bytes) -> None:
        self._path = socket_path(data_dir)
        self._authkey = authkey
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None

    def _call(self, method: str, *args: Any) -> Any:
        timeout = self.CALL_TIMEOUT_S
        with self._lock:
            for attempt in range(2):
                try:
                    if self._conn is None:
                        self._conn = _connect(self._path, self._authkey, timeout)
                    self._conn.send((method, args))
                    _wait_for_answer(self._conn, timeout if method in _TIMED else None)
                    status, value = self._conn.recv()
                    break
                except TimeoutError as exc:
                    self._drop()  # a late answer must not be read as the next call's
                    raise Unavailable(
                        f"the processing worker did not answer {method!r} within {timeout:g} s",
                        hint="it may be stuck: look for its error in the server's log, "
                        "restart `personify serve`, then retry (an erasure is safe to run "
                        "again)",
                    ) from exc
                except (OSError, EOFError) as exc:
                    self._drop()
                    if attempt:
                        raise Unavailable(
                            f"the processing worker is not reachable ({exc})",
                            hint="it restarts by itself; retry in a few seconds",
                        ) from exc
        if status == "invalid" and isinstance(value, PersonifyError):
            raise value
        if status != "ok":
            raise Unavailable(f"the processing worker failed: {value}")
        return value

    def call(self, method: str, *args: Any) -> Any:
        """Run segment work in the worker (``segments_dry_run``, ``segments_rebuild``),
        key-rotation work (``privacy_reload_keys``, ``privacy_reseal``) or an erasure's
        ``processing_forget``."""
        return self._call(method, *args)

    def channel(self) -> RemoteEventStore:
        """Another connection to the worker, for long calls (a key rotation's passes) that
        must not hold up the timeline reads on this one; close it when done."""
        return RemoteEventStore(self._path.parent, self._authkey)

    def append(self, events: Sequence[dict[str, Any]], checkpoint: int | None = None) -> None:
        raise Unavailable("only the processing worker writes the event store")

    def checkpoint(self) -> int:
        return int(self._call("checkpoint"))

    def processing_status(self) -> dict[str, Any]:
        """The worker's processing: its last error (``None`` once a batch succeeds) and the
        offset every store and observer has reached (see ``Processor.status``)."""
        return dict(self._call("processing_status"))

    def timeline(
        self, profile_ids: Sequence[str], limit: int = 100, before: str | None = None
    ) -> list[dict[str, Any]]:
        return list(self._call("timeline", list(profile_ids), limit, before))

    def count(self) -> int:
        return int(self._call("count"))

    def delete_profiles(self, profile_ids: Sequence[str]) -> list[str]:
        return [str(m) for m in self._call("delete_profiles", list(profile_ids))]

    def delete_before(
        self, before: str, events: Sequence[str] | None = None, keep: Sequence[str] = ()
    ) -> list[str]:
        found = self._call("delete_before", before, list(events or ()), list(keep))
        return [str(m) for m in found]

    def count_distinct_messages(self) -> int:
        return int(self._call("count_distinct_messages"))

    def scan(
        self,
        events: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[list[dict[str, Any]]]:
        raise Unavailable(
            "scanning the event history runs in the processing worker",
            hint="rebuilds and dry runs are done by the worker; use the segments API",
        )

    def scan_payloads(self, batch_size: int = 10_000) -> Iterator[list[tuple[str, str]]]:
        raise Unavailable(
            "rewriting stored payloads runs in the processing worker",
            hint="rotate keys with POST /v1/privacy/keys/rotate; the worker re-seals events",
        )

    def swap_payloads(self, changes: Sequence[tuple[str, str, str]]) -> int:
        raise Unavailable("only the processing worker writes the event store")

    def close(self) -> None:
        with self._lock:
            self._drop()


class WorkerProcess:
    """Supervises the processing worker; answers the API's questions about progress."""

    FORGET_WAIT_S = 60.0

    def __init__(self, settings: Settings, profiles: ProfileStore, event_log: EventLog) -> None:
        self._settings = settings
        self._profiles = profiles
        self._log = event_log
        self.authkey = secrets.token_bytes(32)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._position = (0.0, 0)
        self.last_error: str | None = None
        self.restarts = 0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def position(self) -> int:
        # Events are written before profiles, so the profile checkpoint is the position.
        at, value = self._position
        now = time.monotonic()
        if now - at > 0.005:
            value = self._profiles.checkpoint()
            self._position = (now, value)
        return value

    def lag(self) -> int:
        return max(self._log.head() - self.position, 0)

    def _spawn(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "personify.profiles.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(
            orjson.dumps(
                {"settings": self._settings.model_dump(mode="json"), "authkey": self.authkey.hex()}
            )
        )
        proc.stdin.close()
        line = proc.stdout.readline()
        if line.strip() != b"ready":
            proc.kill()
            proc.wait()
            raise Unavailable(
                f"the processing worker did not start (exit {proc.returncode})",
                hint="see the worker's error above; is another server using this data dir?",
            )
        self._proc = proc

    def start(self) -> None:
        if self._proc is not None:
            return
        self._stop.clear()
        self._spawn()
        self._monitor = threading.Thread(target=self._watch, name="worker-monitor", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            proc = self._proc
            if proc is not None and proc.poll() is not None and not self._stop.is_set():
                self.last_error = f"worker exited with code {proc.returncode}; restarting"
                self.restarts += 1
                with contextlib.suppress(Unavailable):
                    self._spawn()

    def drain(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while self.lag() > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker still {self.lag()} records behind")
            time.sleep(0.01)

    def step(self) -> int:
        raise Unavailable("processing runs in the worker process")

    def forget(self, profile_ids: Sequence[str]) -> None:
        """After an erasure, the worker's processor forgets the profiles (``Processor.forget``).

        A worker that is restarting is waited for (up to ``FORGET_WAIT_S``): the erasure
        must reach the processor that runs next, not only the one that stopped. Each try
        waits at most ``RemoteEventStore.CALL_TIMEOUT_S`` for an answer, so a worker that
        hangs fails the erasure (to be run again) instead of holding it forever."""
        deadline = time.monotonic() + self.FORGET_WAIT_S
        while True:
            remote = RemoteEventStore(self._settings.data_dir, self.authkey)
            try:
                remote.call("processing_forget", list(profile_ids))
                return
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
            finally:
                remote.close()

    def stop(self) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        self._proc = None


def _warm_up() -> None:
    """Pay one-off lazy start-up costs before the first events and before the heap freezes.

    ua-parser compiles its rules on first use, and pyarrow imports pandas the first time it
    builds an array: together about a second of CPU that the first batch would otherwise pay.
    """
    import pyarrow as pa

    from personify.events.enrich import event_fields

    event_fields("2026-01-01T00:00:00.000000Z", {"userAgent": "Mozilla/5.0", "timezone": "UTC"})
    pa.array(["warm-up"])


def settle_heap() -> None:
    """Keep the garbage collector off the start-up heap and make it run less often.

    A long-lived server process holds hundreds of thousands of objects from its imports,
    which every full collection walks; ingestion allocates (and frees) tens of objects per
    message, which triggers collections constantly. Freezing the start-up heap and raising
    the first threshold cut the collector's share of the CPU several-fold (measured with
    py-spy). Only reference cycles need the collector; profile documents are freed by
    reference counting.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def _serve_reads(
    listener: Listener,
    authkey: bytes,
    events: Any,
    segments: Any = None,
    privacy: Any = None,
    processing: Any = None,
) -> None:
    def handle(conn: Connection) -> None:
        with conn:
            # The handshake runs here, not in ``accept``: a client that hangs up or stalls
            # in the middle of it then ends only its own connection, never the accepting.
            try:
                deliver_challenge(conn, authkey)
                answer_challenge(conn, authkey)
            except (AuthenticationError, EOFError, OSError):
                return
            while True:
                try:
                    method, args = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if method in _SEGMENT_METHODS and segments is not None:
                        conn.send(("ok", getattr(segments, _SEGMENT_METHODS[method])(*args)))
                        continue
                    if method in _PRIVACY_METHODS and privacy is not None:
                        conn.send(("ok", getattr(privacy, _PRIVACY_METHODS[method])(*args)))
                        continue
                    if method in _PROCESSING_METHODS and processing is not None:
                        name = _PROCESSING_METHODS[method]
                        conn.send(("ok", getattr(processing, name)(*args)))
                        continue
                    if method not in _READ_METHODS:
                        raise ValueError(f"unknown method {method!r}")
                    conn.send(("ok", getattr(events, method)(*args)))
                except PersonifyError as exc:  # a caller's mistake: re-raised as it was
                    conn.send(("invalid", exc))
                except Exception as exc:  # answered to the caller, who raises Unavailable
                    conn.send(("err", repr(exc)))

    while True:
        try:
            conn = listener.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def _retrain_scheduler(p: Any) -> Any:
    """Scheduled retraining runs here, beside the event store (``models.retrain_check_hours``)."""
    reader = getattr(p.stores.events, "reader", None)
    if reader is None or p.settings.models.retrain_check_hours <= 0:
        return None
    from personify.models.schedule import RetrainScheduler
    from personify.privacy.standalone import consent_check

    engine = p.segment_engine
    scheduler = RetrainScheduler(
        p.settings,
        reader,
        consent=consent_check(p.settings, "profiling"),
        on_scored=engine.reevaluate if engine is not None else None,  # scores.* conditions
    )
    scheduler.start()
    return scheduler


def main() -> None:
    """Entry point of the worker process (started by :class:`WorkerProcess`)."""
    from personify.platform import build
    from personify.privacy.rotation import Resealer

    spec = orjson.loads(sys.stdin.buffer.read())
    settings = Settings.model_validate(spec["settings"])
    authkey = bytes.fromhex(spec["authkey"])
    parent = os.getppid()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = (settings.data_dir / "worker.lock").open("w")
    deadline = time.monotonic() + 60
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            # A previous worker is still shutting down (its parent was killed): wait for it.
            if time.monotonic() > deadline or os.getppid() != parent:
                sys.exit(3)
            time.sleep(0.05)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    p = build(settings, background_writes=True)
    _warm_up()
    settle_heap()
    path = socket_path(settings.data_dir)
    path.unlink(missing_ok=True)
    listener = Listener(str(path), "AF_UNIX")  # each connection's handshake: _serve_reads
    threading.Thread(
        target=_serve_reads,
        args=(listener, authkey, p.stores.events, p.segment_engine, Resealer(p), p.processor),
        daemon=True,
    ).start()
    p.processor.start()
    if p.segment_engine is not None:
        p.segment_engine.start()  # the segment scheduler: memberships that change with time
    retrain = _retrain_scheduler(p)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while not stop.wait(0.2):
        if os.getppid() != parent:
            break
    if retrain is not None:
        retrain.stop()
    if p.segment_engine is not None:
        p.segment_engine.stop()
    p.processor.stop()
    listener.close()
    p.close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is committed and closed; skip interpreter teardown, where DuckDB's bindings
    # report spurious "leaked instance" warnings while daemon threads still hold references.
    os._exit(0)


if __name__ == "__main__":
    main()
