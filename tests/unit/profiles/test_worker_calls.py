"""Calls over the worker socket: a worker that never answers fails the call after a bounded
wait, with an error that says what to do, instead of holding the request (an erasure) forever.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

import pytest
from tests.unit.helpers import memory_engine

from personify.config import Settings
from personify.errors import Unavailable
from personify.profiles.worker import RemoteEventStore, WorkerProcess, socket_path

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


@pytest.mark.usefixtures("fast")
def test_a_worker_that_answers_is_called_as_before(tmp_path: Path) -> None:
    calls: list[Any] = []
    with _listener(tmp_path, True, calls):
        remote = RemoteEventStore(tmp_path, KEY)
        assert remote.call("processing_forget", ["p1"]) is None
        remote.close()
    assert calls == [("processing_forget", (["p1"],))]
