"""SIGKILL during heavy ingestion and during catch-up loses no acknowledged message, duplicates none.

The issue's durability proof, end to end against a real ``personify serve`` subprocess:

1. four threads post 200-message ``track`` batches as fast as they can;
2. the server is SIGKILLed in the middle of that, so some batches were acknowledged, some
   were cut off mid-request and some never left the client;
3. while it is down, its log file must already hold every acknowledged message (HTTP 200 means
   durable), and nothing that was never sent;
4. it is restarted and SIGKILLed again while the processor is catching up (so a crash can land
   between the event-store write and the profile write), then restarted once more;
5. every batch ever sent is re-delivered, as an SDK retrying would, and must be de-duplicated;
6. the event store must hold each sent message exactly once and every profile must have counted
   each of its messages exactly once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx2 as httpx
import pytest

from tests.e2e.conftest import WRITE_KEY, Server, free_port

pytestmark = pytest.mark.slow

SENDERS = 4
BATCH_SIZE = 200
USERS = 300
EVENT = "Order Completed"
MIN_ACKED_BATCHES = 24
MIN_INGEST_SECONDS = 1.5
MAX_INGEST_SECONDS = 20.0
CATCH_UP_CRASHES = 2

Message = dict[str, Any]


def _user(n: int) -> str:
    return f"crash-user-{n % USERS:03d}"


@dataclass
class Sender:
    """One SDK-like client posting batches until told to stop or the server goes away."""

    url: str
    index: int
    stop: threading.Event
    sent: list[list[Message]] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    acked_batches: int = 0
    failures: list[str] = field(default_factory=list)
    ended_by: str = "stop"

    def batch(self, seq: int) -> list[Message]:
        return [
            {
                "type": "track",
                "messageId": f"crash-{self.index}-{seq:05d}-{i:03d}",
                "userId": _user(self.index * 7 + seq * BATCH_SIZE + i),
                "event": EVENT,
                "properties": {"revenue": 1},
            }
            for i in range(BATCH_SIZE)
        ]

    def run(self) -> None:
        auth = httpx.BasicAuth(WRITE_KEY, "")
        with httpx.Client(base_url=self.url, auth=auth, timeout=30.0) as client:
            seq = 0
            while not self.stop.is_set():
                batch = self.batch(seq)
                seq += 1
                self.sent.append(batch)  # recorded before the request: it may be cut off
                try:
                    resp = client.post("/v1/batch", json={"batch": batch})
                except httpx.TransportError as exc:
                    self.ended_by = f"{type(exc).__name__}: {exc}"
                    return
                if resp.status_code != 200:
                    self.failures.append(f"HTTP {resp.status_code}: {resp.text[:300]}")
                    self.ended_by = "http error"
                    return
                body = resp.json()
                if body.get("accepted") != BATCH_SIZE or body.get("quarantined"):
                    self.failures.append(f"unexpected batch result: {str(body)[:300]}")
                self.acked.extend(m["messageId"] for m in batch)
                self.acked_batches += 1


def _kill(server: Server) -> str:
    """SIGKILL the server and return what it wrote on stderr (closing the pipe)."""
    server.kill()
    proc = server.proc
    if proc is None or proc.stderr is None:
        return ""
    with proc.stderr:
        return proc.stderr.read().decode(errors="replace")


def _health(server: Server) -> dict[str, Any]:
    resp = httpx.get(f"{server.url}/health", timeout=10)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _logged_ids(data_dir: Path) -> list[str]:
    """The message ids in the durable log, read straight from its file while the server is down."""
    with closing(sqlite3.connect(data_dir / "log.sqlite", timeout=30)) as con:
        return [str(r[0]) for r in con.execute("SELECT message_id FROM log")]


def _checkpoints(data_dir: Path) -> tuple[int, int]:
    """(event store, profile store) checkpoints, read while the server is down."""
    with closing(sqlite3.connect(data_dir / "state.sqlite", timeout=30)) as con:
        row = con.execute("SELECT \"offset\" FROM checkpoints WHERE name = 'profiles'").fetchone()
    profiles = int(row[0]) if row else 0
    con2 = duckdb.connect(str(data_dir / "events.duckdb"))
    try:
        erow = con2.execute("SELECT \"offset\" FROM checkpoints WHERE name = 'events'").fetchone()
    finally:
        con2.close()
    return (int(erow[0]) if erow else 0), profiles


def _stored_event_ids(data_dir: Path) -> list[str]:
    con = duckdb.connect(str(data_dir / "events.duckdb"))
    try:
        return [str(r[0]) for r in con.execute("SELECT message_id FROM events").fetchall()]
    finally:
        con.close()


def _resend(server: Server, batches: list[list[Message]]) -> tuple[int, int]:
    """Re-deliver every batch; return (accepted, duplicates) as the server reported them."""
    accepted = duplicates = 0
    auth = httpx.BasicAuth(WRITE_KEY, "")
    with httpx.Client(base_url=server.url, auth=auth, timeout=30.0) as client:
        for batch in batches:
            resp = client.post("/v1/batch", json={"batch": batch})
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert not body["quarantined"], body
            accepted += int(body["accepted"])
            duplicates += int(body["duplicates"])
    return accepted, duplicates


def _crash_during_catch_up(server: Server, diary: list[str]) -> bool:
    """Restart, then SIGKILL while the processor is behind; True if the kill hit the window.

    The processor commits a batch's event rows first and its profile changes second. ``events``
    in /health grows at the first commit while ``processed_up_to`` (the lower of the two
    checkpoints) moves only at the second, so seeing the former move without the latter means
    the processor is between the two writes: that is when the server is killed, if it can be
    caught there before the backlog is gone.
    """
    began = time.monotonic()
    server.start()
    started = time.monotonic() - began
    health = _health(server)
    first = health
    events, position = int(health["events"]), int(health["processed_up_to"])
    deadline = time.monotonic() + 15.0
    while time.monotonic() < deadline and int(health["lag"]) > 0:
        health = _health(server)
        if int(health["processed_up_to"]) != position:
            events, position = int(health["events"]), int(health["processed_up_to"])
        elif int(health["events"]) > events:
            break  # event rows committed, profile changes not yet
    stderr = _kill(server)
    ecp, pcp = _checkpoints(server.data_dir)
    diary.append(
        f"catch-up crash: started in {started:.2f}s at processed_up_to="
        f"{first['processed_up_to']} lag={first['lag']}; killed after "
        f"{time.monotonic() - began:.2f}s seeing events={health['events']} processed_up_to="
        f"{health['processed_up_to']} lag={health['lag']}; on disk: events checkpoint={ecp}, "
        f"profiles checkpoint={pcp}"
    )
    assert "Traceback" not in stderr, stderr
    return ecp > pcp


def test_sigkill_mid_ingestion_loses_no_ack_and_duplicates_nothing(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", free_port())
    diary: list[str] = []
    try:
        server.start()
        stop = threading.Event()
        senders = [Sender(server.url, i, stop) for i in range(SENDERS)]
        threads = [threading.Thread(target=s.run, name=f"sender-{s.index}") for s in senders]
        began = time.monotonic()
        for t in threads:
            t.start()
        # Heavy ingestion for a while, with a good number of batches acknowledged first.
        while True:
            elapsed = time.monotonic() - began
            acked_batches = sum(s.acked_batches for s in senders)
            if elapsed >= MIN_INGEST_SECONDS and acked_batches >= MIN_ACKED_BATCHES:
                break
            if elapsed > MAX_INGEST_SECONDS or not any(t.is_alive() for t in threads):
                break
            time.sleep(0.02)
        assert all(t.is_alive() for t in threads), [s.ended_by for s in senders]
        at_kill = _health(server)
        stderr = _kill(server)  # senders are still sending
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert [f for s in senders for f in s.failures] == []
        assert "Traceback" not in stderr, stderr

        sent_batches = [b for s in senders for b in s.sent]
        sent = [m["messageId"] for b in sent_batches for m in b]
        acked = [i for s in senders for i in s.acked]
        assert len(set(sent)) == len(sent), "the test itself must send unique ids"
        assert set(acked) <= set(sent)
        assert len(acked) // BATCH_SIZE >= MIN_ACKED_BATCHES, (
            f"only {len(acked) // BATCH_SIZE} batches acknowledged in {elapsed:.1f}s"
        )
        diary.append(
            f"ingested {elapsed:.2f}s: {len(sent_batches)} batches sent, "
            f"{len(acked) // BATCH_SIZE} acknowledged; at kill {at_kill}; "
            f"senders ended by {[s.ended_by for s in senders]}"
        )

        # While down: every acknowledged message is already in the log, each once, and the log
        # holds nothing that was never sent.
        logged = _logged_ids(server.data_dir)
        assert len(logged) == len(set(logged))
        missing = set(acked) - set(logged)
        assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:5]}"
        assert set(logged) <= set(sent)
        ecp, pcp = _checkpoints(server.data_dir)
        diary.append(f"after ingestion kill: log={len(logged)} events cp={ecp} profiles cp={pcp}")

        # Crash again (twice) while the processor is catching up on the backlog.
        hits = [_crash_during_catch_up(server, diary) for _ in range(CATCH_UP_CRASHES)]
        diary.append(f"kills between the event and the profile write: {sum(hits)}")

        server.start()
        restarted = _health(server)
        assert int(restarted["log_head"]) >= len(set(acked)), restarted
        assert int(restarted["log_head"]) >= len(logged), restarted

        # Re-deliver every batch ever sent, acknowledged or not, as a retrying SDK would.
        accepted, duplicates = _resend(server, sent_batches)
        assert accepted + duplicates == len(sent)
        assert accepted == len(set(sent) - set(logged))
        assert duplicates == len(logged)

        health = server.wait_caught_up(timeout=60)
        diary.append(f"final health {health}")
        assert health["processor_error"] is None, health
        assert health["events"] == len(sent), health
        assert int(health["processed_up_to"]) == int(health["log_head"]), health

        # Every profile counted each of its messages exactly once.
        expected = Counter(m["userId"] for b in sent_batches for m in b)
        assert health["profiles"] == len(expected), health
        counted: dict[str, int] = {}
        orders: dict[str, int] = {}
        with httpx.Client(base_url=server.url, headers=server.admin(), timeout=30) as client:
            for user in expected:
                resp = client.get("/v1/profiles/lookup", params={"user_id": user})
                assert resp.status_code == 200, resp.text
                computed = resp.json()["computed"]
                counted[user] = int(computed["event_counts"].get(EVENT, 0))
                orders[user] = int(computed["orders"])
        wrong = {u: (counted[u], orders[u], n) for u, n in expected.items() if counted[u] != n}
        wrong |= {u: (counted[u], orders[u], n) for u, n in expected.items() if orders[u] != n}
        assert not wrong, f"(event_counts, orders, expected) differ for {len(wrong)} users: " + str(
            dict(list(wrong.items())[:5])
        )
        assert sum(counted.values()) == sum(orders.values()) == len(sent)

        server.stop()
        stored = _stored_event_ids(server.data_dir)
        assert len(stored) == len(set(stored)) == len(sent)
        assert set(stored) == set(sent)
    except BaseException:
        print("\n".join(diary))
        raise
    finally:
        server.stop()
    print("\n".join(diary))
