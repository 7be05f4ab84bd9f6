"""The processing worker under `personify serve`: restarted if it dies, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx2 as httpx
import pytest
from tests.e2e.conftest import WRITE_KEY, Server

pytestmark = pytest.mark.slow


def _worker_pid(server: Server) -> int:
    assert server.proc is not None
    out = subprocess.run(
        ["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[0])


def _send(server: Server, first: int, count: int) -> None:
    batch = [
        {"type": "track", "userId": f"sup-{i % 7}", "event": "Viewed", "messageId": f"sup-{i}"}
        for i in range(first, first + count)
    ]
    resp = httpx.post(f"{server.url}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""))
    assert resp.status_code == 200, resp.text


def test_a_killed_worker_is_restarted_and_catches_up(server: Server) -> None:
    _send(server, 0, 100)
    server.wait_caught_up()
    old = _worker_pid(server)
    os.kill(old, signal.SIGKILL)
    # Collection does not depend on the worker: these are durable before it is back.
    _send(server, 100, 100)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _worker_pid(server) != old:
                break
        except (subprocess.CalledProcessError, IndexError):
            pass
        time.sleep(0.1)
    stats = server.wait_caught_up(timeout=60)
    assert stats["events"] == 200
    assert stats["processor_error"] is not None  # the restart is reported, not hidden
    assert "restarting" in str(stats["processor_error"])
    profile = httpx.get(
        f"{server.url}/v1/profiles/lookup", params={"user_id": "sup-3"}, headers=server.admin()
    ).json()
    assert profile["computed"]["event_counts"]["Viewed"] == sum(1 for i in range(200) if i % 7 == 3)
