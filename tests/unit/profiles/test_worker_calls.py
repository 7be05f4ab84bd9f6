"""Calls over the worker socket: a worker that never answers fails the call after a bounded
wait, with an error that says what to do, instead of holding the request (an erasure) forever.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

import pytest
from tests.unit.helpers import memory_engine

from personify.config import Settings
from personify.errors import Unavailable
from personify.profiles.worker import RemoteEventStore, WorkerProcess, _serve_reads, socket_path

KEY = b"k" * 32


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RemoteEventStore, "CALL_TIMEOUT_S", 0.2)
    monkeypatch.setattr(WorkerProcess, "FORGET_WAIT_S", 0.5)


@contextlib.contextmanager
def _silent_socket(data_dir: Path) -> Iterator[None]:
    """Accepts connections and never writes a byte (not even the handshake's challenge)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(socket_path(data_dir)))
    server.listen()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield
    server.close()
    for conn in held:
        conn.close()


@contextlib.contextmanager
def _listener(data_dir: Path, answer: bool, calls: list[Any]) -> Iterator[None]:
    """Completes the handshake and takes each call; answers it only if ``answer``."""
    listener = Listener(str(socket_path(data_dir)), "AF_UNIX", authkey=KEY)
    done = threading.Event()
    held: list[Connection] = []

    def serve() -> None:
        while True:
            try:
                conn = listener.accept()
            except OSError:
                return
            held.append(conn)
            try:
                calls.append(conn.recv())
            except (EOFError, OSError):
                continue
            if answer:
                conn.send(("ok", None))
            else:
                done.wait()

    threading.Thread(target=serve, daemon=True).start()
    yield
    done.set()
    listener.close()
    for conn in held:
        conn.close()


@pytest.fixture(params=["no-handshake", "no-answer"])
def hung_worker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    if request.param == "no-handshake":
        with _silent_socket(tmp_path):
            yield
    else:
        with _listener(tmp_path, False, []):
            yield


@pytest.mark.usefixtures("fast", "hung_worker")
def test_a_call_to_a_worker_that_never_answers_fails_after_the_timeout(tmp_path: Path) -> None:
    remote = RemoteEventStore(tmp_path, KEY)
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"did not answer 'timeline' within 0\.2 s") as err:
        remote.timeline(["p1"])
    assert time.monotonic() - started < 2.0
    assert err.value.hint is not None and "restart `personify serve`" in err.value.hint
    remote.close()


@pytest.mark.usefixtures("fast", "hung_worker")
def test_forget_gives_up_on_a_hung_worker_within_its_wait(tmp_path: Path) -> None:
    p, _ = memory_engine()
    worker = WorkerProcess(Settings(data_dir=tmp_path), p.stores.profiles, p.stores.log)
    worker.authkey = KEY
    started = time.monotonic()
    with pytest.raises(Unavailable, match="did not answer 'processing_forget'"):
        worker.forget(["p1"])
    # FORGET_WAIT_S, plus at most one more try's timeout and pause
    assert time.monotonic() - started < 0.5 + 0.2 + 0.5 + 1.0
    p.close()


def test_a_worker_that_answers_is_called_as_before(tmp_path: Path) -> None:
    calls: list[Any] = []
    with _listener(tmp_path, True, calls):
        remote = RemoteEventStore(tmp_path, KEY)
        assert remote.call("processing_forget", ["p1"]) is None
        remote.close()
    assert calls == [("processing_forget", (["p1"],))]


@pytest.mark.usefixtures("fast")
def test_connecting_to_a_worker_whose_listen_queue_is_full_times_out(tmp_path: Path) -> None:
    # A worker that stopped accepting: once its listen queue is full, a blocking connect
    # would wait forever.
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(socket_path(tmp_path)))
    server.listen(0)
    queued: list[socket.socket] = []
    for _ in range(4):
        s = socket.socket(socket.AF_UNIX)
        s.setblocking(False)
        try:
            s.connect(str(socket_path(tmp_path)))
        except BlockingIOError:
            s.close()
            break
        queued.append(s)
    else:
        pytest.fail("the listen queue never filled")
    remote = RemoteEventStore(tmp_path, KEY)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="did not answer 'timeline'"):
        remote.timeline(["p1"])
    assert time.monotonic() - started < 2.0
    remote.close()
    for s in queued:
        s.close()
    server.close()


@pytest.mark.usefixtures("fast")
def test_whole_store_work_is_waited_for_past_the_timeout(tmp_path: Path) -> None:
    calls: list[Any] = []
    listener = Listener(str(socket_path(tmp_path)), "AF_UNIX", authkey=KEY)

    def serve() -> None:
        with listener.accept() as conn:
            calls.append(conn.recv())
            time.sleep(0.6)  # three times CALL_TIMEOUT_S
            conn.send(("ok", ["m1"]))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    remote = RemoteEventStore(tmp_path, KEY)
    assert remote.delete_profiles(["p1"]) == ["m1"]
    remote.close()
    listener.close()
    assert calls == [("delete_profiles", (["p1"],))]


class _Events:
    def timeline(self, profile_ids: list[str], limit: int, before: Any) -> list[dict[str, Any]]:
        return [{"profile_id": pid} for pid in profile_ids]


def test_a_client_that_breaks_off_the_handshake_leaves_the_worker_answering(
    tmp_path: Path,
) -> None:
    listener = Listener(str(socket_path(tmp_path)), "AF_UNIX")
    threading.Thread(target=_serve_reads, args=(listener, KEY, _Events()), daemon=True).start()
    # one hangs up at once, one sends garbage, one has the wrong key
    rude = socket.socket(socket.AF_UNIX)
    rude.connect(str(socket_path(tmp_path)))
    rude.close()
    garbage = socket.socket(socket.AF_UNIX)
    garbage.connect(str(socket_path(tmp_path)))
    garbage.sendall(b"\x00\x00\x00\x05hello")
    stranger = RemoteEventStore(tmp_path, b"w" * 32)
    with pytest.raises(AuthenticationError):
        stranger.timeline(["p0"])
    stranger.close()
    remote = RemoteEventStore(tmp_path, KEY)
    assert remote.timeline(["p1"]) == [{"profile_id": "p1"}]
    remote.close()
    garbage.close()
    listener.close()


class _Processing:
    def __init__(self) -> None:
        self.last_error: str | None = "RuntimeError('observer failed')"

    def status(self) -> dict[str, Any]:
        return {"error": self.last_error, "position": 7}


def test_the_api_reports_a_batch_failing_inside_the_worker(tmp_path: Path) -> None:
    # a failing observer leaves the supervisor's error empty and the profile checkpoint
    # moving; /v1/stats must still say that processing fails
    listener = Listener(str(socket_path(tmp_path)), "AF_UNIX")
    processing = _Processing()
    threading.Thread(
        target=_serve_reads,
        args=(listener, KEY, _Events()),
        kwargs={"processing": processing},
        daemon=True,
    ).start()
    remote = RemoteEventStore(tmp_path, KEY)
    try:
        assert remote.processing_status() == {"error": processing.last_error, "position": 7}
        p = memory_engine()[0]
        p.stores.events = remote  # as the API process of `serve` has it
        p.stores.events.count = lambda: 0  # type: ignore[method-assign]
        assert p.stats()["processor_error"] == "RuntimeError('observer failed')"
        processing.last_error = None  # the next batch succeeded
        assert p.stats()["processor_error"] is None
    finally:
        remote.close()
        listener.close()


def test_processing_status_holds_back_for_a_failing_observer() -> None:
    p = memory_engine()[0]

    class Failing:
        name = "failing"

        def checkpoint(self) -> int:
            return 0

        def observe(self, events: Any, profiles: Any, checkpoint: int) -> None:
            raise RuntimeError("observer failed")

    p.processor.add_observer(Failing())
    p.track(user_id="u1", event="A")
    with pytest.raises(RuntimeError):
        p.processor.step()
    status = p.processor.status()
    assert status["position"] == 0  # the profile store moved on; the observer did not
    assert p.stores.profiles.checkpoint() == 1
